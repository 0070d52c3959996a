//===- SplatDialect.cpp - the splat dialect: verifiers --------------------===//

#include "SplatDialect.h"

#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::splat;

#include "SplatDialect.cpp.inc"
#include "SplatAttrInterfaces.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "SplatAttrs.cpp.inc"

#define GET_OP_CLASSES
#include "SplatOps.cpp.inc"

void SplatDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "SplatAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "SplatOps.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// Pattern attributes
//===----------------------------------------------------------------------===//

using EmitErrorFn = function_ref<InFlightDiagnostic()>;

static LogicalResult requireAtLeast(EmitErrorFn emitError, StringRef attr,
                                    StringRef param, int64_t value,
                                    int64_t minimum) {
  if (value >= minimum)
    return success();
  return emitError() << "'" << attr << "' parameter '" << param
                     << "' must be >= " << minimum << ", got " << value;
}

LogicalResult WindowAttr::verify(EmitErrorFn emitError, int64_t w) {
  return requireAtLeast(emitError, "window", "w", w, 0);
}

LogicalResult CausalWindowAttr::verify(EmitErrorFn emitError, int64_t w) {
  return requireAtLeast(emitError, "causal_window", "w", w, 0);
}

LogicalResult DilatedAttr::verify(EmitErrorFn emitError, int64_t w,
                                  int64_t stride) {
  if (failed(requireAtLeast(emitError, "dilated", "w", w, 0)))
    return failure();
  return requireAtLeast(emitError, "dilated", "stride", stride, 1);
}

LogicalResult StridedAttr::verify(EmitErrorFn emitError, int64_t local,
                                  int64_t stride) {
  if (failed(requireAtLeast(emitError, "strided", "local", local, 1)))
    return failure();
  return requireAtLeast(emitError, "strided", "stride", stride, 1);
}

LogicalResult FixedAttr::verify(EmitErrorFn emitError, int64_t block,
                                int64_t summary) {
  if (failed(requireAtLeast(emitError, "fixed", "block", block, 1)) ||
      failed(requireAtLeast(emitError, "fixed", "summary", summary, 0)))
    return failure();
  if (summary > block)
    return emitError() << "'fixed' parameter 'summary' (" << summary
                       << ") must not exceed 'block' (" << block << ")";
  return success();
}

LogicalResult BlockedAttr::verify(EmitErrorFn emitError, int64_t block) {
  return requireAtLeast(emitError, "blocked", "block", block, 1);
}

LogicalResult GlobalTokensAttr::verify(EmitErrorFn emitError,
                                       ArrayRef<int64_t> indices) {
  if (indices.empty())
    return emitError() << "'global_tokens' needs at least one index";
  for (int64_t index : indices)
    if (failed(requireAtLeast(emitError, "global_tokens", "indices", index, 0)))
      return failure();
  return success();
}

LogicalResult RandomBlocksAttr::verify(EmitErrorFn emitError, int64_t block,
                                       int64_t perRow, int64_t seed) {
  if (failed(requireAtLeast(emitError, "random_blocks", "block", block, 1)) ||
      failed(requireAtLeast(emitError, "random_blocks", "per_row", perRow, 0)))
    return failure();
  return requireAtLeast(emitError, "random_blocks", "seed", seed, 0);
}

static LogicalResult verifyPatternMembers(EmitErrorFn emitError, StringRef name,
                                          ArrayAttr members) {
  if (members.empty())
    return emitError() << "'" << name << "' needs at least one member";
  for (Attribute member : members)
    if (!isa<PatternAttrInterface>(member))
      return emitError() << "'" << name
                         << "' members must be splat patterns, got " << member;
  return success();
}

LogicalResult UnionAttr::verify(EmitErrorFn emitError, ArrayAttr members) {
  return verifyPatternMembers(emitError, "union", members);
}

LogicalResult IntersectAttr::verify(EmitErrorFn emitError, ArrayAttr members) {
  return verifyPatternMembers(emitError, "intersect", members);
}

//===----------------------------------------------------------------------===//
// ACSR layout
//===----------------------------------------------------------------------===//

static int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t PieceAttr::getNumRows() const {
  return ceilDiv(getR1() - getR0(), getStep());
}

LogicalResult PieceAttr::verify(EmitErrorFn emitError, int64_t r0, int64_t r1,
                                int64_t step, int64_t stride, int64_t offA,
                                int64_t offB, int64_t cntA, int64_t cntB) {
  if (failed(requireAtLeast(emitError, "piece", "r0", r0, 0)) ||
      failed(requireAtLeast(emitError, "piece", "step", step, 1)) ||
      failed(requireAtLeast(emitError, "piece", "stride", stride, 1)))
    return failure();
  if (r1 <= r0)
    return emitError() << "piece rows " << r0 << " to " << r1
                       << " are empty: r1 must be > r0";
  // count(t) is affine, so it is non-negative on [0, T) iff it is at both ends.
  int64_t last = ceilDiv(r1 - r0, step) - 1;
  for (int64_t t : {int64_t(0), last})
    if (cntA * t + cntB < 0)
      return emitError() << "piece count (" << cntA << "*t + " << cntB
                         << ") is negative at row t = " << t;
  return success();
}

/// Checks that every key of `piece` lies in [0, lk). The first and last key
/// of a row are affine in t, so it suffices to check the ends of the range
/// of rows whose count is at least one.
static LogicalResult verifyPieceColumns(EmitErrorFn emitError, PieceAttr piece,
                                        int64_t index, int64_t lk) {
  int64_t lastRow = piece.getNumRows() - 1;
  int64_t cntA = piece.getCntA(), cntB = piece.getCntB();
  int64_t lo = 0, hi = lastRow;
  if (cntA > 0)
    lo = std::max(lo, ceilDiv(std::max<int64_t>(1 - cntB, 0), cntA));
  else if (cntA < 0)
    hi = std::min(hi, (cntB - 1) / -cntA);
  else if (cntB < 1)
    return success();
  if (lo > hi)
    return success();
  for (int64_t t : {lo, hi}) {
    int64_t count = cntA * t + cntB;
    if (count < 1)
      continue;
    int64_t first = piece.getOffA() * t + piece.getOffB();
    int64_t lastCol = first + piece.getStride() * (count - 1);
    if (first < 0 || lastCol >= lk)
      return emitError() << "piece #" << index << " row t = " << t
                         << " has keys " << first << " .. " << lastCol
                         << " outside [0, " << lk << ")";
  }
  return success();
}

LogicalResult ACSRAttr::verify(EmitErrorFn emitError, int64_t lq, int64_t lk,
                               ArrayAttr pieces,
                               BlockRemainderAttr remainder) {
  if (failed(requireAtLeast(emitError, "acsr", "lq", lq, 1)) ||
      failed(requireAtLeast(emitError, "acsr", "lk", lk, 1)))
    return failure();
  for (auto [index, attr] : llvm::enumerate(pieces)) {
    auto piece = dyn_cast<PieceAttr>(attr);
    if (!piece)
      return emitError() << "acsr pieces must be #splat.piece, got " << attr;
    if (piece.getR1() > lq)
      return emitError() << "piece #" << index << " rows end at "
                         << piece.getR1() << ", past lq = " << lq;
    if (failed(verifyPieceColumns(emitError, piece, index, lk)))
      return failure();
  }
  if (!remainder)
    return success();
  int64_t block = remainder.getBlock();
  ArrayRef<int64_t> blocks = remainder.getBlocks();
  for (size_t i = 0; i + 1 < blocks.size(); i += 2)
    if (blocks[i] >= ceilDiv(lq, block) || blocks[i + 1] >= ceilDiv(lk, block))
      return emitError() << "remainder block (" << blocks[i] << ", "
                         << blocks[i + 1] << ") lies outside the "
                         << lq << "x" << lk << " mask";
  return success();
}

LogicalResult BlockRemainderAttr::verify(EmitErrorFn emitError, int64_t block,
                                         ArrayRef<int64_t> blocks,
                                         DenseElementsAttr masks) {
  if (failed(requireAtLeast(emitError, "block_remainder", "block", block, 1)))
    return failure();
  if (blocks.size() % 2 != 0)
    return emitError() << "block_remainder blocks must be (row, col) pairs, "
                       << "got " << blocks.size() << " values";
  for (int64_t index : blocks)
    if (failed(requireAtLeast(emitError, "block_remainder", "blocks", index, 0)))
      return failure();
  if (!masks)
    return success();
  auto type = cast<ShapedType>(masks.getType());
  SmallVector<int64_t> expected = {int64_t(blocks.size() / 2), block, block};
  if (!type.getElementType().isInteger(1) || type.getShape() != ArrayRef(expected))
    return emitError() << "block_remainder masks must be tensor<"
                       << expected[0] << "x" << block << "x" << block
                       << "xi1>, got " << type;
  return success();
}

LogicalResult TileScheduleAttr::verify(EmitErrorFn emitError, int64_t blockM,
                                       int64_t blockN,
                                       DenseI32ArrayAttr rowTiles,
                                       DenseI32ArrayAttr segments,
                                       DenseI32ArrayAttr maskPtr,
                                       DenseI32ArrayAttr maskTiles,
                                       DenseI32ArrayAttr maskBits,
                                       DenseI32ArrayAttr plans) {
  if (failed(requireAtLeast(emitError, "tile_schedule", "block_m", blockM, 1)) ||
      failed(requireAtLeast(emitError, "tile_schedule", "block_n", blockN, 1)))
    return failure();
  if (rowTiles.size() % 5 != 0 || segments.size() % 9 != 0)
    return emitError() << "tile_schedule row_tiles must hold 5 and segments 9 "
                          "values per entry";
  ArrayRef<int32_t> tiles = rowTiles.asArrayRef();
  int64_t numSegments = segments.size() / 9;
  for (size_t i = 0; i < tiles.size(); i += 5) {
    int32_t nrows = tiles[i + 2], begin = tiles[i + 3], end = tiles[i + 4];
    if (tiles[i + 1] < 1 || nrows < 0 || nrows > blockM)
      return emitError() << "tile_schedule row tile #" << i / 5
                         << " has row_step " << tiles[i + 1] << " and "
                         << nrows << " rows (block_m = " << blockM << ")";
    if (begin < 0 || begin > end || end > numSegments)
      return emitError() << "tile_schedule row tile #" << i / 5
                         << " names segments " << begin << " .. " << end
                         << " of " << numSegments;
  }
  ArrayRef<int32_t> segs = segments.asArrayRef();
  for (size_t i = 0; i < segs.size(); i += 9)
    if (segs[i + 1] < 1)
      return emitError() << "tile_schedule segment #" << i / 9
                         << " has col_step " << segs[i + 1] << " (must be >= 1)";
  if (plans) {
    if (plans.size() != int64_t(tiles.size() / 5))
      return emitError() << "tile_schedule has " << plans.size()
                         << " plans for " << tiles.size() / 5 << " row tiles";
    for (int32_t plan : plans.asArrayRef())
      if (plan != 0 && plan != 1)
        return emitError() << "tile_schedule plan " << plan
                           << " is neither 0 (affine) nor 1 (blocks)";
  }
  if (!maskPtr && !maskTiles && !maskBits)
    return success();
  if (!maskPtr || !maskTiles || !maskBits)
    return emitError() << "tile_schedule needs all of mask_ptr, mask_tiles "
                          "and mask_bits, or none";
  int64_t numMaskTiles = maskTiles.size() / 2;
  int64_t words = (blockN + 31) / 32;
  if (maskPtr.size() != int64_t(tiles.size() / 5 + 1) || maskTiles.size() % 2 ||
      maskBits.size() != numMaskTiles * blockM * words)
    return emitError() << "tile_schedule mask tables have inconsistent sizes: "
                       << maskPtr.size() << " pointers for " << tiles.size() / 5
                       << " row tiles, " << numMaskTiles << " mask tiles, "
                       << maskBits.size() << " bit words (expected "
                       << numMaskTiles * blockM * words << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// Ops
//===----------------------------------------------------------------------===//

static bool dimsAgree(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

/// Checks that dimension `da` of `a` equals dimension `db` of `b`.
static LogicalResult checkDim(Operation *op, StringRef what, StringRef nameA,
                              ShapedType a, unsigned da, StringRef nameB,
                              ShapedType b, unsigned db) {
  if (dimsAgree(a.getDimSize(da), b.getDimSize(db)))
    return success();
  return op->emitOpError() << what << " mismatch: " << nameA << " has "
                           << a.getDimSize(da) << " but " << nameB << " has "
                           << b.getDimSize(db);
}

/// Checks the query/key/value shapes shared by every op: B and D agree, and
/// H is a multiple of Hkv.
static LogicalResult verifyQK(Operation *op, ShapedType q, ShapedType k,
                              StringRef kName) {
  if (failed(checkDim(op, "batch", "q", q, 0, kName, k, 0)) ||
      failed(checkDim(op, "head dim", "q", q, 3, kName, k, 3)))
    return failure();
  int64_t h = q.getDimSize(1), hkv = k.getDimSize(1);
  if (!ShapedType::isDynamic(h) && !ShapedType::isDynamic(hkv) &&
      (hkv == 0 || h % hkv != 0))
    return op->emitOpError() << "query heads (" << h
                             << ") must be a multiple of key/value heads ("
                             << hkv << ")";
  return success();
}

/// Checks an ACSR layout's lq/lk against the query and key lengths.
static LogicalResult verifyLayoutDims(Operation *op, Attribute layout,
                                      int64_t lq, int64_t lk) {
  auto acsr = dyn_cast<ACSRAttr>(layout);
  if (!acsr)
    return success();
  if (!dimsAgree(acsr.getLq(), lq) || !dimsAgree(acsr.getLk(), lk))
    return op->emitOpError() << "layout is " << acsr.getLq() << "x"
                             << acsr.getLk() << " but the attention is " << lq
                             << "x" << lk;
  return success();
}

static LogicalResult verifyScale(Operation *op, std::optional<APFloat> scale) {
  if (scale && !(scale->convertToDouble() > 0.0 && scale->isFinite()))
    return op->emitOpError() << "scale must be a positive finite number";
  return success();
}

LogicalResult AttentionOp::verify() {
  auto q = getQ().getType(), k = getK().getType(), v = getV().getType();
  auto o = getO().getType();
  if (q.getElementType() != k.getElementType() ||
      q.getElementType() != v.getElementType() ||
      q.getElementType() != o.getElementType())
    return emitOpError() << "q, k, v and o must share one element type";
  if (failed(verifyQK(*this, q, k, "k")))
    return failure();
  for (unsigned d = 0; d < 4; ++d)
    if (failed(checkDim(*this, "key/value shape", "k", k, d, "v", v, d)) ||
        failed(checkDim(*this, "output shape", "q", q, d, "o", o, d)))
      return failure();
  if (getSchedule() && !isa<ACSRAttr>(getLayout()))
    return emitOpError() << "a tile schedule needs an ACSR layout; run "
                            "splat-analyze-regularity first";
  if (getSplitSchedule() && !getSchedule())
    return emitOpError() << "a split schedule needs a schedule";
  if (failed(verifyScale(*this, getScale())))
    return failure();
  return verifyLayoutDims(*this, getLayout(), q.getDimSize(2), k.getDimSize(2));
}

/// The compressed score tensor is B x H x Lq x maxnnz.
static LogicalResult verifyScores(Operation *op, ShapedType scores,
                                  ShapedType q, StringRef qName) {
  for (unsigned d = 0; d < 3; ++d)
    if (failed(checkDim(op, "score shape", "scores", scores, d, qName, q, d)))
      return failure();
  if (scores.getDimSize(3) == 0)
    return op->emitOpError() << "compressed score dimension must be >= 1";
  return success();
}

LogicalResult SddmmOp::verify() {
  auto q = getQ().getType(), k = getK().getType();
  if (q.getElementType() != k.getElementType())
    return emitOpError() << "q and k must share one element type";
  if (failed(verifyQK(*this, q, k, "k")) ||
      failed(verifyScores(*this, getScores().getType(), q, "q")) ||
      failed(verifyScale(*this, getScale())))
    return failure();
  return verifyLayoutDims(*this, getLayout(), q.getDimSize(2), k.getDimSize(2));
}

LogicalResult SoftmaxOp::verify() {
  auto in = getScores().getType(), out = getProbs().getType();
  for (unsigned d = 0; d < 4; ++d)
    if (failed(checkDim(*this, "shape", "scores", in, d, "result", out, d)))
      return failure();
  return verifyLayoutDims(*this, getLayout(), in.getDimSize(2),
                          ShapedType::kDynamic);
}

LogicalResult SpmmOp::verify() {
  auto p = getProbs().getType(), v = getV().getType(), o = getO().getType();
  if (v.getElementType() != o.getElementType())
    return emitOpError() << "v and o must share one element type";
  for (unsigned d = 0; d < 3; ++d)
    if (failed(checkDim(*this, "output shape", "probs", p, d, "o", o, d)))
      return failure();
  if (failed(verifyQK(*this, o, v, "v")))
    return failure();
  return verifyLayoutDims(*this, getLayout(), p.getDimSize(2), v.getDimSize(2));
}
