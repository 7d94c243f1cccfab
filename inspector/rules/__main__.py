"""`python -m trlprep.inspector.rules`: the rule table, as the docs' rules page shows it."""

from trlprep.inspector.rules import markdown_table

print(markdown_table(), end="")
