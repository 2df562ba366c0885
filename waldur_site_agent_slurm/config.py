"""Typed configuration: the schemas the framework discovers and the settings the backend uses.

The framework validates ``backend_settings`` with ``SlurmBackendSettingsSchema`` but only
logs a warning when validation fails, then goes on with the raw data. The backend
therefore validates again in its constructor (``load_settings``) and refuses to start
with a message that names the key and the allowed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    ValidationError,
    model_validator,
)
from waldur_site_agent.backend import logger
from waldur_site_agent.backend.quota import HomedirQuotaConfig
from waldur_site_agent.common.plugin_schemas import (
    HomedirSettingsSchema,
    PluginComponentSchema,
)

from waldur_site_agent_slurm import config_rules
from waldur_site_agent_slurm.allocation import own_qos
from waldur_site_agent_slurm.errors import InvalidValueError, SlurmConfigError
from waldur_site_agent_slurm.site import ldap_settings, projectdirs
from waldur_site_agent_slurm.site.ldap_settings import LdapSchema, LdapSettings
from waldur_site_agent_slurm.slurm import validation

# Waldur component keys whose SLURM TRES name is fixed by convention.
DEFAULT_TRES_NAMES = {
    "cpu": "cpu",
    "mem": "mem",
    "gpu": "gres/gpu",
    "billing": "billing",
    "node": "node",
    "energy": "energy",
}
PREPAID = "one"  # accounting_type of components paid up front for the whole duration
DEFAULT_COMMAND_TIMEOUT = 120.0
DEFAULT_QOS = {"default": "normal", "downscaled": "slowdown", "paused": "blocked"}


class QosLevelsSchema(BaseModel):
    """QoS names used by periodic limits (``default`` / ``slowdown`` / ``blocked``)."""

    model_config = ConfigDict(extra="allow")

    default: str | None = None
    slowdown: str | None = None
    blocked: str | None = None


DEFAULT_STATE_DIR = "/var/lib/waldur-site-agent-slurm"
# A billing weight: a finite, non-negative number of billing units per Waldur unit.
BillingWeight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class PeriodicLimitsSchema(BaseModel):
    """The ``periodic_limits`` block of ``backend_settings``.

    Defaults and why:

    - ``enabled: false``: periodic settings are applied only where a site asks for them.
    - ``limit_type: GrpTRESMins``: Mastermind's default. Settings of another limit type
      are refused; ``GrpTRES`` must be chosen here on purpose, because Mastermind sends
      minutes, not a count of concurrently used TRES.
    - ``tres_billing_enabled: true``: the ``billing`` entry Mastermind adds is applied as
      the ``billing`` TRES; ``false`` leaves it out (for clusters whose SLURM billing
      weights do not match Waldur's).
    - ``tres_billing_weights`` (alias ``billing_weights``): weights per Waldur component
      for the usage compared with ``qos_threshold``/``grace_limit``; by default
      Mastermind's own (CPU 0.015625, Mem 0.001953125, GRES/gpu 0.25).
    - ``threshold_qos: false``: Mastermind already turns thresholds into the resource's
      paused/downscaled flags, which membership sync applies. Local thresholds use
      another weighting than Waldur's usage percentage, so they can disagree with it,
      and as the stricter level always wins, a local false alarm could not be lifted
      from Waldur. They also cost one ``sacct`` per message. Switch on where Waldur's
      policy does not pause or downscale by itself.
    - ``allow_blocking_limits: false``: a zero limit (Mastermind's ``billing: 0``
      pitfall) or a zero threshold blocks an account; such values are refused and
      reported unless this is true.
    - ``period: quarter``: the billing period when a message does not name its
      previous period; ``total`` (one-off allocations) never resets RawUsage.
    - ``state_dir: /var/lib/waldur-site-agent-slurm``: where the RawUsage-reset guard,
      the last threshold level and the last Waldur flags survive restarts (the agent
      builds a new backend for every message). It must be writable by the agent.

    Keys of older configurations (``grace_ratio``, ``raw_usage_reset``,
    ``carryover_enabled``, ...) are kept as extras and named in the start-up warning.
    """

    model_config = ConfigDict(extra="allow")

    enabled: bool = False
    emulator_mode: bool = False
    emulator_base_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s/]+(/\S*)?$", description="slurm-emulator's API"
    )
    limit_type: Literal["GrpTRESMins", "MaxTRESMins", "GrpTRES"] = "GrpTRESMins"
    tres_billing_enabled: bool = True
    billing_weights: dict[str, BillingWeight] | None = None
    tres_billing_weights: dict[str, BillingWeight] | None = None
    qos_levels: QosLevelsSchema | None = None
    fairshare_decay_half_life: PositiveFloat | None = None
    threshold_qos: bool = False
    allow_blocking_limits: bool = False
    period: Literal["month", "quarter", "year", "total"] = "quarter"
    state_dir: str = Field(default=DEFAULT_STATE_DIR, min_length=1)

    @model_validator(mode="after")
    def _one_set_of_weights(self) -> PeriodicLimitsSchema:
        both = self.billing_weights is not None and self.tres_billing_weights is not None
        if both and self.billing_weights != self.tres_billing_weights:
            raise ValueError(
                "billing_weights and tres_billing_weights differ; set only tres_billing_weights"
            )
        return self


class ExecutionMode(str, Enum):
    """How the plugin talks to SLURM: its command-line tools or slurmrestd."""

    CLI = "cli"
    REST = "rest"


class SlurmLimitType(str, Enum):
    """The association limit periodic settings are written to."""

    GRP_TRES_MINS = "GrpTRESMins"
    MAX_TRES_MINS = "MaxTRESMins"
    GRP_TRES = "GrpTRES"


class SlurmRestApiConfig(BaseModel):
    """The ``rest_api`` block: how to reach slurmrestd (``execution_mode: rest``)."""

    model_config = ConfigDict(extra="allow")

    url: str | None = Field(default=None, description="http(s)://host:port or unix:///path")
    api_version: str = "v0.0.43"
    username: str | None = None
    token_file: str | None = None
    token_env: str | None = None
    verify_ssl: bool = True
    timeout: PositiveFloat = 30.0


class QosManagementConfig(BaseModel):
    """The ``qos_management`` block: a QoS per allocation, named after its account."""

    model_config = ConfigDict(extra="allow")

    enabled: bool = False
    flags: list[str] | str = Field(default_factory=lambda: ["DenyOnLimit", "NoDecay"])
    grp_tres: dict[str, int] | str | None = None
    max_jobs: int | None = None
    max_submit: int | None = None
    max_wall: int | str | None = None
    min_tres_per_job: dict[str, int] | str | None = None
    additional_qos: list[str] | None = None
    skip_qos_swap: bool = False
    apply_limits_to_qos: bool = False


class LustreQuotaConfig(BaseModel):
    """``project_directory.lustre_quota``: a Lustre project quota per project directory."""

    model_config = ConfigDict(extra="allow")

    mount_point: str = "/valhalla"
    block_softlimit: str | int | None = None
    block_hardlimit: str | int | None = None
    inode_softlimit: int | None = None
    inode_hardlimit: int | None = None


class ProjectDirectoryConfig(BaseModel):
    """The ``project_directory`` block: a shared directory per project."""

    model_config = ConfigDict(extra="allow")

    enabled: bool = False
    base_path: str = "/valhalla/projects"
    owner: str = "nobody"
    permissions: str | int = "770"
    set_gid: bool = True
    set_acl: bool = True
    lustre_quota: LustreQuotaConfig | None = None


class HomedirQuotaSchema(HomedirQuotaConfig):
    """The framework's ``homedir_quota`` block; keys it does not know are warned about."""

    model_config = ConfigDict(extra="allow")


class SlurmBackendSettingsSchema(HomedirSettingsSchema):
    """Every key the SLURM backend accepts in ``backend_settings``.

    Every block allows extra keys, as the schema of waldur-site-agent-slurm 1.0.7 does:
    the framework validates ``backend_settings`` with this schema before the backend
    sees them, and a failure there would only be logged. ``load_settings`` names the
    extras, at their full key path, in one warning. ``hide_input_in_errors``: the
    framework logs a failed validation whole, and the values may hold passwords.
    """

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    default_account: str | None = Field(
        default=None, description="Account every user gets as default (policy 'common')"
    )
    default_account_policy: str | None = Field(
        default=None,
        description="How users' default accounts are set: 'common' (default_account), "
        "'individual' (the first allocation a user joins) or 'none' (SLURM decides)",
    )
    root_account: str | None = Field(default=None, description="Parent of customer accounts")
    parent_account: str | None = Field(
        default=None, description="Flat hierarchy: put every allocation directly under it"
    )
    account_prefix: str | None = Field(default=None, description="Prefix for all three tiers")
    customer_prefix: str | None = None
    project_prefix: str | None = None
    allocation_prefix: str | None = None
    cluster_name: str | None = Field(default=None, description="Scope sacctmgr to this cluster")
    slurm_bin_path: str | None = Field(default=None, description="Directory of SLURM commands")
    command_timeout: PositiveFloat | None = Field(
        default=None, description="Seconds before a SLURM command is killed (default 120)"
    )
    emulator_mode: bool | None = Field(
        default=None, description="Run slurm-emulator's commands instead of SLURM's"
    )
    timezone: str | None = Field(
        default=None,
        description="IANA zone usage months are cut in where the agent passes none "
        "(the historical usage loader); must equal the agent's timezone",
    )
    qos_default: str | None = None
    qos_downscaled: str | None = None
    qos_paused: str | None = None
    default_partition: str | None = None
    cpu_unit_factor: PositiveFloat | None = None
    mem_unit_factor: PositiveFloat | None = None
    gpu_unit_factor: PositiveFloat | None = None
    periodic_limits: PeriodicLimitsSchema | None = None
    homedir_quota: HomedirQuotaSchema | None = Field(
        default=None, description="Filesystem quota settings for user home directories"
    )
    # Keys the framework itself reads from backend_settings.
    soft_delete: bool | None = None
    check_backend_id_uniqueness: bool | None = None
    check_all_offerings: bool | None = None
    backend_id_max_retries: int | None = Field(default=None, ge=1)
    # Keys of waldur-site-agent-slurm 1.0.7 that a site's configuration may carry.
    execution_mode: ExecutionMode | None = Field(default=None, description="cli (default) or rest")
    rest_api: SlurmRestApiConfig | None = None
    qos_enforcement_enabled: bool | None = None
    enforce_offering_qos: bool | None = None
    enforce_offering_partitions: bool | None = None
    qos_management: QosManagementConfig | None = None
    project_directory: ProjectDirectoryConfig | None = None
    ldap: LdapSchema | None = Field(
        default=None, description="POSIX groups per project in an LDAP directory"
    )
    keep_default_account_association: bool | None = Field(
        default=None,
        description="Keep a user's default-account association when they leave their "
        "last allocation (default: remove it, so they can no longer submit jobs)",
    )


class TargetComponentSchema(BaseModel):
    """One SLURM TRES a Waldur component is mapped onto."""

    model_config = ConfigDict(extra="allow")

    factor: float = Field(
        description="TRES-minutes of this TRES per Waldur unit (its unit_factor)",
        gt=0,
        allow_inf_nan=False,
        strict=True,
    )


class SlurmComponentSchema(PluginComponentSchema):
    """SLURM-specific keys of a ``backend_components`` entry (extra keys are warned about)."""

    model_config = ConfigDict(extra="allow")

    tres_name: str | None = Field(
        default=None, description="SLURM TRES this component maps to (default from its key)"
    )
    unit: str | None = Field(default=None, description="Display unit (informational)")
    target_components: dict[str, TargetComponentSchema] | None = Field(
        default=None,
        description="Map the component onto several TRES, each with its own factor: limits "
        "are value × factor per TRES, usage the sum of TRES-minutes ÷ factor",
    )


@dataclass(frozen=True)
class Target:
    """A TRES a component is limited and reported through, and its TRES-minutes per unit."""

    tres: str
    factor: float


@dataclass(frozen=True)
class Component:
    """One offering component and how it maps to SLURM.

    ``targets`` is every TRES the component is limited and reported through: its own
    ``tres`` with ``unit_factor``, or the TRES of ``target_components`` (then ``tres``
    is None: there is no single TRES, so periodic settings skip the component).
    """

    key: str
    tres: str | None
    unit_factor: float
    accounting_type: str
    measured_unit: str = ""
    limit: float | None = None
    targets: tuple[Target, ...] = ()

    def __post_init__(self) -> None:
        """A component with its own TRES is limited and reported through that TRES alone."""
        if not self.targets and self.tres:
            object.__setattr__(self, "targets", (Target(self.tres, self.unit_factor),))

    @property
    def prepaid(self) -> bool:
        """``accounting_type: one``: the limit is per month of the resource's duration."""
        return self.accounting_type == PREPAID


@dataclass(frozen=True)
class SlurmSettings:
    """The validated, defaulted view of ``backend_settings`` the plugin works with."""

    default_account: str | None
    default_account_policy: str
    root_account: str
    parent_account: str | None
    customer_prefix: str
    project_prefix: str
    allocation_prefix: str
    cluster_name: str | None
    slurm_bin_path: str | None
    command_timeout: float
    emulator_mode: bool
    qos_default: str
    qos_downscaled: str
    qos_paused: str
    default_partition: str | None
    homedirs_enabled: bool
    homedir_umask: str
    timezone: str | None = None
    periodic: PeriodicLimitsSchema = field(default_factory=PeriodicLimitsSchema)
    components: dict[str, Component] = field(default_factory=dict)
    execution_mode: str = ExecutionMode.CLI.value
    rest_api: SlurmRestApiConfig | None = None
    qos_enforcement_enabled: bool = False
    enforce_offering_qos: bool | None = None
    enforce_offering_partitions: bool = False
    qos_management: QosManagementConfig | None = None
    # The checked qos_management block; None when the feature is off.
    managed_qos: own_qos.QosOptions | None = None
    project_directory: ProjectDirectoryConfig | None = None
    # The checked project_directory block; None when the feature is off.
    project_directory_layout: projectdirs.Layout | None = None
    ldap: LdapSettings | None = None
    keep_default_account_association: bool = False
    homedir_base_path: str | None = None

    def tres_components(self) -> dict[str, Component]:
        """Components that map to a SLURM TRES, keyed by component key."""
        return {key: comp for key, comp in self.components.items() if comp.targets}


def _format_validation_error(err: ValidationError, where: str) -> str:
    problems = []
    for item in err.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(settings)"
        problems.append(f"{where}.{key}: {item['msg']}")
    return "; ".join(problems)


def _validated_schema(raw: dict[str, Any]) -> SlurmBackendSettingsSchema:
    """Validate settings once; keys nothing reads, at any depth, are kept as extras."""
    try:
        return SlurmBackendSettingsSchema(**raw)
    except ValidationError as err:
        raise SlurmConfigError(
            "Invalid SLURM backend settings: " + _format_validation_error(err, "backend_settings")
        ) from err


def _components(
    raw: dict[str, dict[str, Any]], schema: SlurmBackendSettingsSchema
) -> dict[str, Component]:
    """Every component; a TRES limited through two components is refused."""
    result = {key: _component(key, comp, schema) for key, comp in raw.items()}
    owners: dict[str, str] = {}
    for key, comp in result.items():
        for target in comp.targets:
            other = owners.setdefault(target.tres, key)
            if other != key:
                raise SlurmConfigError(
                    f"Invalid backend_components: TRES {target.tres} is mapped from both "
                    f"{other} and {key}; its GrpTRESMins can hold only one limit"
                )
    return result


def _targets(key: str, extra: SlurmComponentSchema) -> tuple[Target, ...]:
    """The TRES of ``target_components``, names checked."""
    if not extra.target_components:
        raise SlurmConfigError(
            f"Invalid backend_components.{key}.target_components: "
            "expected at least one TRES with its factor, e.g. {cpu: {factor: 60}}"
        )
    if extra.tres_name:
        logger.warning(
            "Component %s sets both tres_name and target_components; the targets are used", key
        )
    where = f"backend_components.{key}.target_components"
    return tuple(
        Target(_as_config(validation.tres_name, tres, where), float(target.factor))
        for tres, target in extra.target_components.items()
    )


def _component(key: str, raw: dict[str, Any], schema: SlurmBackendSettingsSchema) -> Component:
    plugin_keys = {k: raw[k] for k in ("tres_name", "unit", "target_components") if k in raw}
    try:
        extra = SlurmComponentSchema(**plugin_keys)
    except ValidationError as err:
        raise SlurmConfigError(
            "Invalid component: " + _format_validation_error(err, f"backend_components.{key}")
        ) from err
    tres = extra.tres_name or DEFAULT_TRES_NAMES.get(key)
    if tres is None and key.startswith("gres/"):
        tres = key
    if tres is not None:
        _as_config(validation.tres_name, tres, f"backend_components.{key}.tres_name")
    default_factor = (
        getattr(schema, f"{key}_unit_factor", None) if key in {"cpu", "mem", "gpu"} else None
    )
    unit_factor = raw.get("unit_factor", default_factor or 1.0)
    if (
        isinstance(unit_factor, bool)
        or not isinstance(unit_factor, int | float)
        or not 0 < unit_factor < float("inf")
    ):
        raise SlurmConfigError(
            f"Invalid backend_components.{key}.unit_factor {unit_factor!r}: "
            "must be a positive number (TRES-minutes per Waldur unit)"
        )
    accounting_type = str(raw.get("accounting_type", "usage"))
    if accounting_type not in {"usage", "limit", PREPAID}:
        raise SlurmConfigError(
            f"Invalid backend_components.{key}.accounting_type {accounting_type!r}: "
            "allowed values are 'usage', 'limit', 'one'"
        )
    if "target_components" in raw:
        targets = _targets(key, extra)
        tres = None
    else:
        targets = () if tres is None else (Target(tres, float(unit_factor)),)
    limit = raw.get("limit")
    if limit is not None:
        for target in targets or (Target("", float(unit_factor)),):
            _as_config(
                validation.limit_value,
                float(limit) * target.factor,
                f"backend_components.{key}.limit",
            )
    if not targets:
        logger.warning(
            "Component %s has no SLURM TRES (set tres_name to map it); "
            "it is neither limited nor reported",
            key,
        )
    return Component(
        key=key,
        tres=tres,
        unit_factor=float(unit_factor),
        accounting_type=accounting_type,
        measured_unit=str(raw.get("measured_unit", "")),
        limit=None if limit is None else float(limit),
        targets=targets,
    )


def _as_config(check: Any, value: object, field_name: str) -> Any:
    try:
        return check(value, field_name)
    except InvalidValueError as err:
        raise SlurmConfigError(str(err)) from err


def load_settings(raw: dict[str, Any], components: dict[str, dict[str, Any]]) -> SlurmSettings:
    """Validate ``backend_settings`` and ``backend_components`` and apply the defaults.

    Raises:
        SlurmConfigError: naming the offending key and what is allowed.
    """
    schema = _validated_schema(raw)
    unknown = config_rules.unknown_keys(schema) + config_rules.unknown_component_keys(components)
    if unknown:
        logger.warning(
            "Ignoring configuration keys this plugin does not use: %s", ", ".join(unknown)
        )
    config_rules.check_conflicts(schema)
    periodic = schema.periodic_limits or PeriodicLimitsSchema()
    levels = periodic.qos_levels or QosLevelsSchema()
    prefix = schema.account_prefix or ""

    def prefix_for(value: str | None, name: str) -> str:
        source = name if value is not None else "account_prefix"
        chosen = (prefix if value is None else value).lower()
        return str(_as_config(validation.account_prefix, chosen, f"backend_settings.{source}"))

    def account(value: str | None, name: str) -> str | None:
        if value is None:
            return None
        return str(_as_config(validation.account_name, value.lower(), f"backend_settings.{name}"))

    def qos(value: str | None, name: str) -> str:
        # SLURM lower-cases QoS names; compare and write the spelling it stores.
        lowered = value.lower() if isinstance(value, str) else value
        return str(_as_config(validation.qos_name, lowered, f"backend_settings.{name}"))

    policy = config_rules.default_account_policy(
        schema.default_account_policy, schema.default_account
    )
    default_account = account(schema.default_account, "default_account")
    if policy == "common" and not default_account:
        raise SlurmConfigError(
            "backend_settings.default_account_policy is 'common' but default_account is not "
            "set: name the account every user should get as default"
        )
    partition = schema.default_partition
    if partition is not None:
        partition = partition.lower()  # SLURM stores association partitions in lower case
        _as_config(validation.partition_name, partition, "backend_settings.default_partition")
    if schema.timezone is not None:
        _as_config(validation.zone, schema.timezone, "backend_settings.timezone")
    root_account = account(schema.root_account, "root_account") or default_account or "root"
    directories = schema.project_directory
    return SlurmSettings(
        default_account=default_account,
        default_account_policy=policy,
        root_account=root_account,
        parent_account=account(schema.parent_account, "parent_account"),
        customer_prefix=prefix_for(schema.customer_prefix, "customer_prefix"),
        project_prefix=prefix_for(schema.project_prefix, "project_prefix"),
        allocation_prefix=prefix_for(schema.allocation_prefix, "allocation_prefix"),
        cluster_name=account(schema.cluster_name, "cluster_name"),
        slurm_bin_path=schema.slurm_bin_path,
        command_timeout=schema.command_timeout or DEFAULT_COMMAND_TIMEOUT,
        emulator_mode=bool(schema.emulator_mode or periodic.emulator_mode),
        qos_default=qos(
            schema.qos_default or levels.default or DEFAULT_QOS["default"], "qos_default"
        ),
        qos_downscaled=qos(
            schema.qos_downscaled or levels.slowdown or DEFAULT_QOS["downscaled"], "qos_downscaled"
        ),
        qos_paused=qos(schema.qos_paused or levels.blocked or DEFAULT_QOS["paused"], "qos_paused"),
        default_partition=partition,
        homedirs_enabled=schema.enable_user_homedir_account_creation is not False,
        homedir_umask=schema.default_homedir_umask or "0077",
        timezone=schema.timezone,
        periodic=periodic,
        components=_components(components, schema),
        execution_mode=(schema.execution_mode or ExecutionMode.CLI).value,
        rest_api=schema.rest_api,
        qos_enforcement_enabled=bool(schema.qos_enforcement_enabled),
        enforce_offering_qos=schema.enforce_offering_qos,
        enforce_offering_partitions=bool(schema.enforce_offering_partitions),
        qos_management=schema.qos_management,
        managed_qos=own_qos.load(schema.qos_management),
        project_directory=directories,
        project_directory_layout=(
            projectdirs.layout(directories) if directories and directories.enabled else None
        ),
        ldap=ldap_settings.load(schema.ldap),
        keep_default_account_association=bool(schema.keep_default_account_association),
        homedir_base_path=schema.homedir_base_path,
    )
