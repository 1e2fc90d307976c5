"""Resource-option helpers shared by the platform components."""

from __future__ import annotations

import pulumi


def depends_on_of(opts: pulumi.ResourceOptions | None) -> list[pulumi.Resource]:
    """The resources a component was told to depend on, to repeat on the one child that really needs them.

    A component's `depends_on` orders the component, not its children; a child that must wait (nodes for the
    CNI add-on, the ALB for its log bucket's policy) gets the list again on its own options.
    """
    deps = opts.depends_on if opts is not None else None
    if deps is None:
        return []
    if isinstance(deps, pulumi.Resource):
        return [deps]
    return [d for d in deps if isinstance(d, pulumi.Resource)]  # type: ignore[union-attr]
