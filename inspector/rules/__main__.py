"""`python -m trlprep.inspector.rules`: the README's rule table."""

from trlprep.inspector.rules import markdown_table

print(markdown_table(), end="")
