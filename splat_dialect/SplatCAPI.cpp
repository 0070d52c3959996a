//===- SplatCAPI.cpp - C API of the splat dialect -------------------------===//
//
// Thin wrappers over the ODS-generated accessors; see SplatCAPI.h.
//
//===----------------------------------------------------------------------===//

#include "SplatCAPI.h"
#include "SplatDialect.h"

#include "mlir/CAPI/IR.h"
#include "mlir/CAPI/Registration.h"

#include <algorithm>
#include <iterator>

using namespace mlir;
using namespace mlir::splat;

MLIR_DEFINE_CAPI_DIALECT_REGISTRATION(Splat, splat, mlir::splat::SplatDialect)

// The kind test of every attribute, and the getter of every int64 parameter:
// one line each, so the list below reads as the dialect's parameter table.
#define SPLAT_ISA(Kind)                                                        \
  bool mlirAttributeIsASplat##Kind##Attr(MlirAttribute attr) {                 \
    return isa<Kind##Attr>(unwrap(attr));                                      \
  }
#define SPLAT_INT_PARAM(Kind, Param)                                           \
  int64_t mlirSplat##Kind##AttrGet##Param(MlirAttribute attr) {                \
    return cast<Kind##Attr>(unwrap(attr)).get##Param();                        \
  }

//===----------------------------------------------------------------------===//
// Pattern attributes
//===----------------------------------------------------------------------===//

bool mlirAttributeIsASplatPatternAttr(MlirAttribute attr) {
  return isa<PatternAttrInterface>(unwrap(attr));
}

SPLAT_ISA(Window)
SPLAT_INT_PARAM(Window, W)
SPLAT_ISA(Causal)
SPLAT_ISA(CausalWindow)
SPLAT_INT_PARAM(CausalWindow, W)
SPLAT_ISA(Dilated)
SPLAT_INT_PARAM(Dilated, W)
SPLAT_INT_PARAM(Dilated, Stride)
SPLAT_ISA(Strided)
SPLAT_INT_PARAM(Strided, Local)
SPLAT_INT_PARAM(Strided, Stride)
SPLAT_ISA(Fixed)
SPLAT_INT_PARAM(Fixed, Block)
SPLAT_INT_PARAM(Fixed, Summary)
SPLAT_ISA(Blocked)
SPLAT_INT_PARAM(Blocked, Block)
SPLAT_ISA(GlobalTokens)
SPLAT_ISA(RandomBlocks)
SPLAT_INT_PARAM(RandomBlocks, Block)
SPLAT_INT_PARAM(RandomBlocks, PerRow)
SPLAT_INT_PARAM(RandomBlocks, Seed)
SPLAT_ISA(Union)
SPLAT_ISA(Intersect)

const int64_t *mlirSplatGlobalTokensAttrGetIndices(MlirAttribute attr,
                                                   intptr_t *size) {
  ArrayRef<int64_t> indices = cast<GlobalTokensAttr>(unwrap(attr)).getIndices();
  *size = indices.size();
  return indices.data();
}

MlirAttribute mlirSplatUnionAttrGetMembers(MlirAttribute attr) {
  return wrap(cast<UnionAttr>(unwrap(attr)).getMembers());
}

MlirAttribute mlirSplatIntersectAttrGetMembers(MlirAttribute attr) {
  return wrap(cast<IntersectAttr>(unwrap(attr)).getMembers());
}

//===----------------------------------------------------------------------===//
// The ACSR layout
//===----------------------------------------------------------------------===//

static void writePieceFields(PieceAttr piece, int64_t *fields) {
  const int64_t values[MLIR_SPLAT_PIECE_FIELDS] = {
      piece.getR0(),     piece.getR1(),   piece.getStep(), piece.getStride(),
      piece.getOffA(),   piece.getOffB(), piece.getCntA(), piece.getCntB()};
  std::copy(std::begin(values), std::end(values), fields);
}

SPLAT_ISA(Piece)

void mlirSplatPieceAttrGetFields(MlirAttribute attr, int64_t *fields) {
  writePieceFields(cast<PieceAttr>(unwrap(attr)), fields);
}

SPLAT_ISA(BlockRemainder)
SPLAT_INT_PARAM(BlockRemainder, Block)

const int64_t *mlirSplatBlockRemainderAttrGetBlocks(MlirAttribute attr,
                                                    intptr_t *size) {
  ArrayRef<int64_t> blocks = cast<BlockRemainderAttr>(unwrap(attr)).getBlocks();
  *size = blocks.size();
  return blocks.data();
}

MlirAttribute mlirSplatBlockRemainderAttrGetMasks(MlirAttribute attr) {
  return wrap(cast<BlockRemainderAttr>(unwrap(attr)).getMasks());
}

SPLAT_ISA(ACSR)
SPLAT_INT_PARAM(ACSR, Lq)
SPLAT_INT_PARAM(ACSR, Lk)

intptr_t mlirSplatACSRAttrGetNumPieces(MlirAttribute attr) {
  return cast<ACSRAttr>(unwrap(attr)).getPieces().size();
}

MlirAttribute mlirSplatACSRAttrGetPieces(MlirAttribute attr) {
  return wrap(cast<ACSRAttr>(unwrap(attr)).getPieces());
}

void mlirSplatACSRAttrGetPieceTable(MlirAttribute attr, int64_t *table) {
  // The verifier guarantees that every element is a #splat.piece.
  for (Attribute piece : cast<ACSRAttr>(unwrap(attr)).getPieces()) {
    writePieceFields(cast<PieceAttr>(piece), table);
    table += MLIR_SPLAT_PIECE_FIELDS;
  }
}

MlirAttribute mlirSplatACSRAttrGetRemainder(MlirAttribute attr) {
  return wrap(cast<ACSRAttr>(unwrap(attr)).getRemainder());
}

//===----------------------------------------------------------------------===//
// The tile schedule
//===----------------------------------------------------------------------===//

SPLAT_ISA(TileSchedule)
SPLAT_INT_PARAM(TileSchedule, BlockM)
SPLAT_INT_PARAM(TileSchedule, BlockN)

/// Hands out one i32 table; a null (absent optional) table gives false.
static bool readTable(DenseI32ArrayAttr table, const int32_t **data,
                      intptr_t *size) {
  if (!table) {
    *data = nullptr;
    *size = 0;
    return false;
  }
  ArrayRef<int32_t> values = table.asArrayRef();
  *data = values.data();
  *size = values.size();
  return true;
}

#define SPLAT_TABLE(Param)                                                     \
  bool mlirSplatTileScheduleAttrGet##Param(                                    \
      MlirAttribute attr, const int32_t **data, intptr_t *size) {              \
    return readTable(cast<TileScheduleAttr>(unwrap(attr)).get##Param(), data,  \
                     size);                                                    \
  }

SPLAT_TABLE(RowTiles)
SPLAT_TABLE(Segments)
SPLAT_TABLE(MaskPtr)
SPLAT_TABLE(MaskTiles)
SPLAT_TABLE(MaskBits)
SPLAT_TABLE(Plans)
