//===- SplatCAPI.h - C API of the splat dialect -------------------*- C -*-===//
//
// What Python needs from the C++ dialect: a dialect handle (registered into a
// context through MLIR's own `mlirDialectHandleRegisterDialect`) and typed
// read access to every splat attribute, so that no Python code has to parse
// printed attributes.
//
// Conventions follow upstream's mlir-c: `mlirAttributeIsASplat<Kind>Attr`
// tests the kind; `mlirSplat<Kind>AttrGet<Param>` reads one parameter and
// requires an attribute of that kind (anything else is undefined behaviour,
// as upstream). Attributes are built from text (the verifiers check them), so
// there are no constructors here.
//
// Array getters hand out pointers into the uniqued attribute storage: they
// stay valid as long as the attribute's context.
//
//===----------------------------------------------------------------------===//

#ifndef SPLAT_CAPI_H
#define SPLAT_CAPI_H

#include <stdbool.h>
#include <stdint.h>

#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

MLIR_DECLARE_CAPI_DIALECT_REGISTRATION(Splat, splat);

//===----------------------------------------------------------------------===//
// Pattern attributes
//===----------------------------------------------------------------------===//

/// Any pattern attribute (implements PatternAttrInterface).
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatPatternAttr(MlirAttribute attr);

/// #splat.window<w>
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatWindowAttr(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatWindowAttrGetW(MlirAttribute attr);

/// #splat.causal (no parameters)
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatCausalAttr(MlirAttribute attr);

/// #splat.causal_window<w>
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatCausalWindowAttr(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatCausalWindowAttrGetW(MlirAttribute attr);

/// #splat.dilated<w, stride>
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatDilatedAttr(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatDilatedAttrGetW(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatDilatedAttrGetStride(MlirAttribute attr);

/// #splat.strided<local, stride>
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatStridedAttr(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatStridedAttrGetLocal(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatStridedAttrGetStride(MlirAttribute attr);

/// #splat.fixed<block, summary>
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatFixedAttr(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatFixedAttrGetBlock(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatFixedAttrGetSummary(MlirAttribute attr);

/// #splat.blocked<block>
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatBlockedAttr(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatBlockedAttrGetBlock(MlirAttribute attr);

/// #splat.global_tokens<[indices]>: the indices and, in *size, their count.
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatGlobalTokensAttr(MlirAttribute attr);
MLIR_CAPI_EXPORTED const int64_t *
mlirSplatGlobalTokensAttrGetIndices(MlirAttribute attr, intptr_t *size);

/// #splat.random_blocks<block, per_row, seed>
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatRandomBlocksAttr(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatRandomBlocksAttrGetBlock(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatRandomBlocksAttrGetPerRow(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatRandomBlocksAttrGetSeed(MlirAttribute attr);

/// #splat.union<[members]> and #splat.intersect<[members]>: the members as a
/// builtin ArrayAttr of pattern attributes.
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatUnionAttr(MlirAttribute attr);
MLIR_CAPI_EXPORTED MlirAttribute mlirSplatUnionAttrGetMembers(MlirAttribute attr);
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatIntersectAttr(MlirAttribute attr);
MLIR_CAPI_EXPORTED MlirAttribute
mlirSplatIntersectAttrGetMembers(MlirAttribute attr);

//===----------------------------------------------------------------------===//
// The ACSR layout
//===----------------------------------------------------------------------===//

/// The number of int64 fields of one piece, in the order
/// r0, r1, step, stride, off_a, off_b, cnt_a, cnt_b.
#define MLIR_SPLAT_PIECE_FIELDS 8

/// #splat.piece<...>: writes its MLIR_SPLAT_PIECE_FIELDS fields to `fields`.
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatPieceAttr(MlirAttribute attr);
MLIR_CAPI_EXPORTED void mlirSplatPieceAttrGetFields(MlirAttribute attr,
                                                    int64_t *fields);

/// #splat.block_remainder<block, blocks [...], masks ...>: `blocks` are
/// (row_block, col_block) pairs flattened; `masks` is an i1
/// DenseElementsAttr, or a null attribute when absent (all blocks full).
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatBlockRemainderAttr(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatBlockRemainderAttrGetBlock(MlirAttribute attr);
MLIR_CAPI_EXPORTED const int64_t *
mlirSplatBlockRemainderAttrGetBlocks(MlirAttribute attr, intptr_t *size);
MLIR_CAPI_EXPORTED MlirAttribute
mlirSplatBlockRemainderAttrGetMasks(MlirAttribute attr);

/// #splat.acsr<lq, lk, pieces, remainder>
MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatACSRAttr(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatACSRAttrGetLq(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatACSRAttrGetLk(MlirAttribute attr);
MLIR_CAPI_EXPORTED intptr_t mlirSplatACSRAttrGetNumPieces(MlirAttribute attr);
/// The pieces as a builtin ArrayAttr of #splat.piece.
MLIR_CAPI_EXPORTED MlirAttribute mlirSplatACSRAttrGetPieces(MlirAttribute attr);
/// Writes every piece's fields, row by row, to `table`, which must hold
/// GetNumPieces * MLIR_SPLAT_PIECE_FIELDS values.
MLIR_CAPI_EXPORTED void mlirSplatACSRAttrGetPieceTable(MlirAttribute attr,
                                                       int64_t *table);
/// The #splat.block_remainder, or a null attribute when there is none.
MLIR_CAPI_EXPORTED MlirAttribute mlirSplatACSRAttrGetRemainder(MlirAttribute attr);

//===----------------------------------------------------------------------===//
// The tile schedule (also the op attribute `split_schedule`)
//===----------------------------------------------------------------------===//

MLIR_CAPI_EXPORTED bool mlirAttributeIsASplatTileScheduleAttr(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatTileScheduleAttrGetBlockM(MlirAttribute attr);
MLIR_CAPI_EXPORTED int64_t mlirSplatTileScheduleAttrGetBlockN(MlirAttribute attr);

/// Each table getter sets *data to the table's flattened int32 values and
/// *size to their count, and returns true; an absent optional table (the
/// mask tables of a schedule without remainder) returns false with
/// *data = NULL and *size = 0.
MLIR_CAPI_EXPORTED bool
mlirSplatTileScheduleAttrGetRowTiles(MlirAttribute attr, const int32_t **data,
                                     intptr_t *size);
MLIR_CAPI_EXPORTED bool
mlirSplatTileScheduleAttrGetSegments(MlirAttribute attr, const int32_t **data,
                                     intptr_t *size);
MLIR_CAPI_EXPORTED bool
mlirSplatTileScheduleAttrGetMaskPtr(MlirAttribute attr, const int32_t **data,
                                    intptr_t *size);
MLIR_CAPI_EXPORTED bool
mlirSplatTileScheduleAttrGetMaskTiles(MlirAttribute attr, const int32_t **data,
                                      intptr_t *size);
MLIR_CAPI_EXPORTED bool
mlirSplatTileScheduleAttrGetMaskBits(MlirAttribute attr, const int32_t **data,
                                     intptr_t *size);
/// The tiler's plan per row tile (0 affine, 1 blocks); absent: not recorded.
MLIR_CAPI_EXPORTED bool
mlirSplatTileScheduleAttrGetPlans(MlirAttribute attr, const int32_t **data,
                                  intptr_t *size);

#ifdef __cplusplus
}
#endif

#endif // SPLAT_CAPI_H
