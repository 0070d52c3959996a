//===- SplatCAPI.h - C API of the splat dialect -------------------*- C -*-===//
//
// The one C entry point Python needs: a dialect handle, registered into a
// context through MLIR's own `mlirDialectHandleRegisterDialect`.
//
//===----------------------------------------------------------------------===//

#ifndef SPLAT_CAPI_H
#define SPLAT_CAPI_H

#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

MLIR_DECLARE_CAPI_DIALECT_REGISTRATION(Splat, splat);

#ifdef __cplusplus
}
#endif

#endif // SPLAT_CAPI_H
