"""Diagrams the engine accepts but that break at run time: each check here refuses one with a
problem on the element that says why and how to fix it.

_Checker (workflows/validation.py) calls every function of DOCUMENT_CHECKS once per document
with (checker, root) and every function of PROCESS_CHECKS once per executable process with
(checker, process); a check reports through checker.add(...) (see workflows/problems.py).
"""

DOCUMENT_CHECKS = []
PROCESS_CHECKS = []
