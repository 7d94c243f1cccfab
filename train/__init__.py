"""trlprep's train layer: inspect → convert → TRL trainer, one call (`train.train`) or one command."""
