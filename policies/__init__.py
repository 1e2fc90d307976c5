"""visionrag CrossGuard policy pack.

Loaded two ways: by the Pulumi CLI, which runs ``policies/__main__.py`` with this directory as its working
directory (``pulumi preview --policy-pack policies --policy-pack-config policies/config/<stack>.json``), and as
the ``policies`` package from the repository root (the offline evaluator, ``python -m policies.check``, tests).
The rule modules live in ``policies/rules/`` rather than at the top of the pack: the CLI puts the pack directory
first on ``sys.path``, and top-level modules named ``secrets`` or ``kubernetes`` would shadow the standard
library's ``secrets`` and the Kubernetes client for every library the policies import.
"""
