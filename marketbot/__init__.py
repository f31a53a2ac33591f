"""Process-level plumbing shared by every MarketBot process: settings, logging, embedded servers, the CLI."""
