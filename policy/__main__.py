"""Entry point `pulumi preview --policy-pack policy` runs; the policies live in goapp_policy."""

from goapp_policy.pack import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name="goapp-policies", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
