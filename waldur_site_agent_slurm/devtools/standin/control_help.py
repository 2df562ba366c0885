"""The control endpoints' usage text (kept apart so ``--help`` loads nothing heavy)."""

HELP = """\
Control endpoints (no token, loopback only):
  GET    /_standin/state                      whole state as JSON
  GET    /_standin/writes[?path_contains=&method=]   recorded non-GET /api/ requests
  DELETE /_standin/writes                     forget them
  GET    /_standin/requests[?path_contains=&method=] every recorded /api/ request
  DELETE /_standin/requests                   forget them
  POST   /_standin/faults      {"method": "POST"|null, "path": "<regex>", "status": 500,
                                "delay": 0.0, "times": 1, "body": {..}, "drop": false}
  DELETE /_standin/faults                     remove every fault
  PATCH  /_standin/resources/<uuid>           {"paused": .., "downscaled": .., "limits": {..},
                                               "state": "..", "backend_id": "..", "name": "..",
                                               "slug": "..", "backend_metadata": {..},
                                               "end_date": "YYYY-MM-DD"|null}
  POST   /_standin/orders      {"type": "Create", "project_uuid": "..", "name": "..",
                                "limits": {..}} or {"type": "Update", "resource_uuid": "..",
                                "limits": {..}} -> {"uuid": ..}
  POST   /_standin/projects/<uuid>/team       {"username": "..", "role": "PROJECT.MEMBER"}
  DELETE /_standin/projects/<uuid>/team/<username>
  POST   /_standin/offering-users             {"username": "..", "state": "OK"}
"""
