"""One module per command (or small group of commands: `data check` and `data prepare`): its options and its
orchestration. composer/cli.py assembles them into one lazy click group; the options several commands share are
declared once in groups.py."""
