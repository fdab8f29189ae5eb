"""Campaigns: models x attacks x videos, run resumably into a SQLite store, reported as tables and plots.

* :func:`load_config` / :func:`parse_config` -- the TOML campaign file (:class:`CampaignConfig`);
* :func:`run_campaign` -- run or resume a campaign into a database (:class:`LocalBackend` workers);
* :class:`Store` -- the SQLite store (one committed row per item);
* :func:`write_report`, :func:`report_tables`, :func:`markdown_table`, :func:`summarize` -- reports.
"""

from vidattack.campaign.backends import Backend, LocalBackend
from vidattack.campaign.config import (
    AttackConfig,
    CampaignConfig,
    ConfigError,
    DataConfig,
    SelectionConfig,
    load_config,
    parse_config,
)
from vidattack.campaign.execution import RunSummary, item_seed, plan_campaign, resolve_target, run_campaign
from vidattack.campaign.report import (
    Summary,
    markdown_table,
    report_tables,
    summarize,
    write_csv,
    write_report,
)
from vidattack.campaign.store import Store

__all__ = [
    "AttackConfig",
    "Backend",
    "CampaignConfig",
    "ConfigError",
    "DataConfig",
    "LocalBackend",
    "RunSummary",
    "SelectionConfig",
    "Store",
    "Summary",
    "item_seed",
    "load_config",
    "markdown_table",
    "parse_config",
    "plan_campaign",
    "report_tables",
    "resolve_target",
    "run_campaign",
    "summarize",
    "write_csv",
    "write_report",
]
