"""CityOS Commerce."""

import os

# The process starts children (embedded Postgres, Cerbos, redis in tests) while gRPC threads run; they exec at
# once, so gRPC's fork handlers are not needed, and running them in the child can abort it. Must precede grpc.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
