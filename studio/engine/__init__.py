"""The headless training engine: `Trainer(config, run_dir, callbacks=[...]).fit()`."""
