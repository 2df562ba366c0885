"""The allocation domain: account tree, limits and units, membership, the QoS decision, usage."""
