//===- SplatDialect.h - the splat dialect -----------------------*- C++ -*-===//

#ifndef SPLAT_DIALECT_H
#define SPLAT_DIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "SplatDialect.h.inc"
#include "SplatAttrInterfaces.h.inc"

#define GET_ATTRDEF_CLASSES
#include "SplatAttrs.h.inc"

#define GET_OP_CLASSES
#include "SplatOps.h.inc"

#endif // SPLAT_DIALECT_H
