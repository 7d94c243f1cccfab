"""trlprep: get a dataset right for fine-tuning with TRL, then train on it.

The stages are subpackages: `trlprep.inspector` knows the formats and the rules, `trlprep.converters` rewrites
data for a method, `trlprep.train` runs TRL's trainers; this package holds what all three share (`errors`,
`files`, `progress`, `options`). Installed, the stages live under this name, so that a user's own `train.py` or
`inspector/` never shadows them. In a checkout they sit beside this folder, at the top of the repository, and
this package looks for them there.
"""

import os

_HERE = os.path.dirname(os.path.abspath(__file__))
if not os.path.isdir(os.path.join(_HERE, "inspector")):  # a checkout, not an installed wheel
    __path__.append(os.path.dirname(_HERE))
