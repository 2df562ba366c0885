"""All records of one stand-in, and how a scenario turns into them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from waldur_site_agent_slurm.devtools.standin.records import (
    ComponentUsage,
    Customer,
    Identity,
    OfferingUser,
    Order,
    Processor,
    Project,
    Resource,
    Service,
    User,
    UserLimit,
    UserUsage,
    new_uuid,
    user_uuid_for,
)
from waldur_site_agent_slurm.devtools.standin.scenario import PolicySpec, Scenario


@dataclass
class Database:
    """All records, keyed by hex UUID (users by username)."""

    users: dict[str, User] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    offering_users: dict[str, OfferingUser] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    usages: dict[str, ComponentUsage] = field(default_factory=dict)
    user_usages: dict[str, UserUsage] = field(default_factory=dict)
    user_limits: dict[str, UserLimit] = field(default_factory=dict)
    identities: dict[str, Identity] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    processors: dict[str, Processor] = field(default_factory=dict)
    policies: dict[str, PolicySpec] = field(default_factory=dict)
    command_results: list[dict[str, Any]] = field(default_factory=list)

    def ensure_user(
        self, username: str, full_name: str = "", email: str = "", uuid: str | None = None
    ) -> User:
        """The Waldur user ``username``, created on first mention."""
        user = self.users.get(username)
        if user is None:
            user = User(uuid or user_uuid_for(username), username, full_name, email)
            self.users[username] = user
        return user

    def offering_user_by_username(self, username: str) -> OfferingUser | None:
        """The offering user whose cluster username is ``username``."""
        return next((u for u in self.offering_users.values() if u.username == username), None)

    @classmethod
    def from_scenario(cls, sc: Scenario, now: dt.datetime) -> Database:
        """The records a scenario describes, all created at ``now``."""
        db = cls()
        for ou in sc.offering_users:
            rec = OfferingUser(
                uuid=ou.uuid or user_uuid_for(f"offering-user:{ou.username}"),
                username=ou.username,
                user_uuid=ou.user_uuid,
                full_name=ou.full_name,
                email=ou.email,
                state=ou.state,
                created=now,
                modified=now,
            )
            db.offering_users[rec.uuid] = rec
            db.ensure_user(ou.username, ou.full_name, ou.email, ou.user_uuid)
        for tok in sc.tokens:
            user = db.ensure_user(tok.username, tok.full_name, tok.email)
            user.is_staff = user.is_staff or tok.is_staff
        provider = sc.offering.customer
        db.customers[provider.uuid] = Customer(provider.uuid, provider.name, provider.slug)
        for cust in sc.customers:
            db.customers[cust.uuid] = Customer(cust.uuid, cust.name, cust.slug)
            for proj in cust.projects:
                project = Project(proj.uuid, proj.name, proj.slug, cust.uuid)
                db.projects[proj.uuid] = project
                for member in proj.team:
                    db.ensure_user(member.username)
                    project.team[member.username] = member.role
        for res in sc.resources:
            db.resources[res.uuid] = Resource(
                uuid=res.uuid,
                name=res.name,
                slug=res.slug,
                project_uuid=res.project,
                state=res.state,
                created=now,
                modified=now,
                backend_id=res.backend_id,
                limits=dict(res.limits),
                paused=res.paused,
                downscaled=res.downscaled,
            )
        for order in sc.orders:
            db.orders[order.uuid] = Order(
                uuid=order.uuid,
                type=order.type,
                resource_uuid=order.resource,
                state=order.state,
                created=now,
                modified=now,
                limits=dict(order.limits),
                attributes=dict(order.attributes) or {"name": db.resources[order.resource].name},
            )
        for policy in sc.policies:
            db.policies[policy.uuid] = policy
        for limit in sc.user_limits:
            rec_limit = UserLimit(
                new_uuid(), limit.resource, limit.username, limit.component, limit.limit
            )
            db.user_limits[rec_limit.uuid] = rec_limit
        return db
