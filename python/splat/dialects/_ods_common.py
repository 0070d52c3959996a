# The generated op bindings import `._ods_common`; they share upstream's.
from mlir.dialects._ods_common import *  # noqa: F401,F403
from mlir.dialects._ods_common import _cext  # noqa: F401
