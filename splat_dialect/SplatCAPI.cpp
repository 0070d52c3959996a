//===- SplatCAPI.cpp - C API of the splat dialect -------------------------===//

#include "SplatCAPI.h"
#include "SplatDialect.h"

#include "mlir/CAPI/Registration.h"

MLIR_DEFINE_CAPI_DIALECT_REGISTRATION(Splat, splat, mlir::splat::SplatDialect)
