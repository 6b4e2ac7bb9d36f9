"""Governance: change review (`canon diff`), the static catalog site (`canon docs`), data tests
(`canon test`) and source freshness (`canon freshness`)."""
