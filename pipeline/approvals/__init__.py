"""Approval of viewings, copies and exports (调阅审批): 调取、复制要经过审批，并将调取、复制
情况记录在案.

The policy (``policy``: config/access-policy.toml) says which accesses need approval; a
request names items or a case, an action, a reason and hours, and an approver grants or
refuses it (``requests``: the vocabulary); the check before bytes flow is in ``enforce``;
the use cases (request, grant, refuse, list) in ``usecases``. Every step is a custody
event: ACCESS_REQUESTED, ACCESS_GRANTED, ACCESS_DENIED, and a use of a grant is the VIEWED
or EXPORTED event of the access, naming the grant (``grant`` in its details).
"""

from pipeline.approvals.policy import Action, Policy, policy_of
from pipeline.approvals.requests import AccessRequest, Listing, Status

__all__ = ["AccessRequest", "Action", "Listing", "Policy", "Status", "policy_of"]
