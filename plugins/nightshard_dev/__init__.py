"""Developer tools, not imported by the runtime: the demo data and model, the config reference writer."""
