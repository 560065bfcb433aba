"""The fixed modules of repro/_corpus.py as `repro.strategies` cases, built in this env.

`CORPUS`: realistic models (a slow MLP regression, a tanh network with str/bool/float
fields, Dropout, GRUCell, attention, Conv1d, integer and boolean arrays); `SURVEY`: the
survey's one-module-per-content-class corpus (with the built-in problem as "builtin").
"""

from .._corpus import REALISTIC
from .._corpus import SURVEY as _SURVEY
from ._strategies import Case

CORPUS = {name: Case(e.source, e.description, e.kinds) for name, e in REALISTIC.items()}
SURVEY = {name: Case(e.source, e.description, e.kinds) for name, e in _SURVEY.items()}
