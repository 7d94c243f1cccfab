"""`python -m inspector.rules`: the README's rule table."""

from inspector.rules import markdown_table

print(markdown_table(), end="")
