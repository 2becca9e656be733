"""Entry point run by the Pulumi engine (Pulumi.yaml `main: infra/`); `infra` is installed in the virtualenv."""

import gc

from infra.program import main

main()

# Everything loaded so far (chiefly pulumi_kubernetes's generated types) lives until the process exits, and the
# collector's passes over it while the interpreter shuts down cost about a fifth of a second per preview or up.
# Frozen objects are skipped by those passes; what the engine's remaining RPCs allocate is collected as usual.
gc.freeze()
