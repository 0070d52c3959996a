//===- SplatDialect.cpp - the splat dialect: verifiers --------------------===//

#include "SplatDialect.h"

#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/BitVector.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/TypeSwitch.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <vector>

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

/// Pattern attributes nest (a union of intersections of unions ...), and the
/// attribute parser recurses once per level: nesting is limited so that a deep
/// input is an ordinary parse error instead of a stack overflow.
static constexpr int kMaxPatternNesting = 256;
static thread_local int patternNesting = 0;

/// `<` members `>` of a union or intersection, at most kMaxPatternNesting deep.
template <typename AttrT>
static Attribute parsePatternMembers(AsmParser &parser, StringRef name) {
  SMLoc loc = parser.getCurrentLocation();
  if (patternNesting >= kMaxPatternNesting) {
    parser.emitError(loc) << "'" << name << "' nests pattern attributes more than "
                          << kMaxPatternNesting << " levels deep";
    return {};
  }
  ++patternNesting;
  llvm::scope_exit leave([] { --patternNesting; });
  ArrayAttr members;
  if (parser.parseLess() || parser.parseAttribute(members) || parser.parseGreater())
    return {};
  return AttrT::getChecked([&] { return parser.emitError(loc); },
                           parser.getContext(), members);
}

Attribute UnionAttr::parse(AsmParser &parser, Type) {
  return parsePatternMembers<UnionAttr>(parser, "union");
}

void UnionAttr::print(AsmPrinter &printer) const {
  printer << "<" << getMembers() << ">";
}

Attribute IntersectAttr::parse(AsmParser &parser, Type) {
  return parsePatternMembers<IntersectAttr>(parser, "intersect");
}

void IntersectAttr::print(AsmPrinter &printer) const {
  printer << "<" << getMembers() << ">";
}

LogicalResult UnionAttr::verify(EmitErrorFn emitError, ArrayAttr members) {
  return verifyPatternMembers(emitError, "union", members);
}

LogicalResult IntersectAttr::verify(EmitErrorFn emitError, ArrayAttr members) {
  return verifyPatternMembers(emitError, "intersect", members);
}

//===----------------------------------------------------------------------===//
// Exact integer arithmetic for layout bounds
//===----------------------------------------------------------------------===//

// Every bound of a layout is computed in 128-bit integers: a product of two
// int64 parameters fits, so no bound wraps around (a stride of 2^61 is a
// stride of 2^61, not a negative number). Where a product of three could not
// fit, the value is checked with __builtin_*_overflow first. After the
// per-piece checks every live cell lies in [0, lq) x [0, lk), and the
// normalised piece coefficients (LivePiece) are bounded by max(lq, lk), so the
// pairwise checks below cannot overflow either.
using Int = __int128;

static std::string toString(Int value) {
  if (value == 0)
    return "0";
  unsigned __int128 magnitude =
      value < 0 ? -static_cast<unsigned __int128>(value)
                : static_cast<unsigned __int128>(value);
  std::string out;
  for (; magnitude; magnitude /= 10)
    out.push_back(char('0' + int(magnitude % 10)));
  if (value < 0)
    out.push_back('-');
  std::reverse(out.begin(), out.end());
  return out;
}

/// floor(a / b) and ceil(a / b) for b > 0.
static Int floorDiv(Int a, Int b) {
  Int q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
static Int ceilDiv(Int a, Int b) { return -floorDiv(-a, b); }
/// a mod b in [0, b), b > 0.
static Int floorMod(Int a, Int b) { return a - b * floorDiv(a, b); }

static Int gcd(Int a, Int b) {
  a = a < 0 ? -a : a;
  b = b < 0 ? -b : b;
  while (b != 0) {
    Int r = a % b;
    a = b;
    b = r;
  }
  return a;
}

/// The inverse of `a` modulo `m` (gcd(a, m) == 1, m >= 1), in [0, m).
static Int modInverse(Int a, Int m) {
  Int oldR = floorMod(a, m), r = m, oldS = 1, s = 0;
  while (r != 0) {
    Int q = oldR / r;
    Int nextR = oldR - q * r, nextS = oldS - q * s;
    oldR = r, r = nextR, oldS = s, s = nextS;
  }
  return floorMod(oldS, m);
}

/// The smallest u >= lo with a*u + b == 0 (mod m), m >= 1, and the period of
/// the solutions; none when the congruence has no solution.
static std::optional<std::pair<Int, Int>> solveCongruence(Int a, Int b, Int m,
                                                          Int lo) {
  Int aa = floorMod(a, m), rhs = floorMod(-b, m);
  Int g = gcd(aa, m); // gcd(0, m) == m
  if (rhs % g != 0)
    return std::nullopt;
  Int period = m / g;
  Int u0 = period == 1 ? 0 : floorMod((rhs / g) * modInverse(aa / g, period), period);
  return std::make_pair(u0 + period * ceilDiv(lo - u0, period), period);
}

namespace {
/// a*u + b.
struct Affine {
  Int a = 0, b = 0;
  Int at(Int u) const { return a * u + b; }
  Affine operator-(const Affine &o) const { return {a - o.a, b - o.b}; }
};

/// The rows of a piece that hold keys, normalised: rows row0 + rowStep*u for
/// u < numRows, keys offset(u) + stride*j for j < count(u) (count(u) >= 1).
/// Coefficients no row observes are 0 (one row: rowStep 1, offset.a = count.a
/// = 0; one key per row: stride 1), so all of them are bounded by lq or lk.
struct LivePiece {
  int64_t index;
  Int row0, rowStep, numRows, stride;
  Affine offset, count;
  Int colLo, colHi; // bounding box of the columns
  Int lastRow() const { return row0 + rowStep * (numRows - 1); }
  /// The last key of row u.
  Affine lastKey() const {
    return {offset.a + stride * count.a, offset.b + stride * (count.b - 1)};
  }
};
} // namespace

/// Restricts [lo, hi] to the u with f(u) <= 0 (an interval: f is affine).
static void restrictNonPositive(Affine f, Int &lo, Int &hi) {
  if (f.a == 0) {
    if (f.b > 0)
      lo = hi + 1;
  } else if (f.a > 0) {
    hi = std::min(hi, floorDiv(-f.b, f.a));
  } else {
    lo = std::max(lo, ceilDiv(f.b, -f.a));
  }
}

/// The first (row, key) that both pieces hold, if any. Exact. The shared rows
/// form one arithmetic sequence (CRT on the row steps), on which both pieces'
/// first and last keys are affine, so the rows where their column ranges meet
/// are one interval, found in O(1). Stride-1 pieces overlap iff that interval is
/// non-empty; pieces of one stride iff it holds a row where their offsets agree
/// modulo the stride (a congruence, O(1)). Pieces of different strides are
/// checked row by row over that interval (O(1) a row, CRT on the strides),
/// only on the rows where the offsets are compatible.
static std::optional<std::pair<Int, Int>> firstOverlap(const LivePiece &p,
                                                       const LivePiece &q) {
  Int lo = std::max(p.row0, q.row0), hi = std::min(p.lastRow(), q.lastRow());
  if (lo > hi)
    return std::nullopt;
  // Rows p.row0 + p.rowStep*x that are also rows of q.
  auto x = solveCongruence(p.rowStep, p.row0 - q.row0, q.rowStep, 0);
  if (!x)
    return std::nullopt;
  Int period = p.rowStep / gcd(p.rowStep, q.rowStep) * q.rowStep;
  Int base = p.row0 + p.rowStep * x->first;
  Int firstRow = base + period * ceilDiv(lo - base, period);
  if (firstRow > hi)
    return std::nullopt;
  Int numShared = (hi - firstRow) / period + 1;
  auto along = [&](const LivePiece &r, Affine f) {
    Int u0 = (firstRow - r.row0) / r.rowStep, k = period / r.rowStep;
    return Affine{f.a * k, f.at(u0)};
  };
  Affine firstP = along(p, p.offset), lastP = along(p, p.lastKey());
  Affine firstQ = along(q, q.offset), lastQ = along(q, q.lastKey());
  Int uLo = 0, uHi = numShared - 1;
  restrictNonPositive(firstP - lastQ, uLo, uHi);
  restrictNonPositive(firstQ - lastP, uLo, uHi);
  if (uLo > uHi)
    return std::nullopt;
  auto rowAt = [&](Int u) { return firstRow + period * u; };
  auto meet = [&](Int u) {
    return std::make_pair(rowAt(u), std::max(firstP.at(u), firstQ.at(u)));
  };
  if (p.stride == 1 && q.stride == 1)
    return meet(uLo);
  Affine diff = firstQ - firstP;
  if (p.stride == q.stride) {
    auto u = solveCongruence(diff.a, diff.b, p.stride, uLo);
    if (!u || u->first > uHi)
      return std::nullopt;
    return meet(u->first);
  }
  Int g = gcd(p.stride, q.stride), qg = q.stride / g;
  Int lcm = p.stride / g * q.stride;
  Int inverse = qg == 1 ? 0 : modInverse(p.stride / g, qg);
  auto u = solveCongruence(diff.a, diff.b, g, uLo);
  if (!u)
    return std::nullopt;
  for (Int v = u->first; v <= uHi; v += u->second) {
    Int o1 = firstP.at(v), o2 = firstQ.at(v);
    Int from = std::max(o1, o2), to = std::min(lastP.at(v), lastQ.at(v));
    Int j = qg == 1 ? 0 : floorMod(((o2 - o1) / g) * inverse, qg);
    Int key = o1 + p.stride * j; // == o1 (mod p.stride), == o2 (mod q.stride)
    key += lcm * ceilDiv(from - key, lcm);
    if (key <= to)
      return std::make_pair(rowAt(v), key);
  }
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// ACSR layout
//===----------------------------------------------------------------------===//

/// ceil(a / b) for a >= 0, b >= 1, without overflow.
static int64_t ceilDivNonNeg(int64_t a, int64_t b) {
  return a == 0 ? 0 : (a - 1) / b + 1;
}

int64_t PieceAttr::getNumRows() const {
  return ceilDivNonNeg(getR1() - getR0(), getStep());
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
  int64_t last = ceilDivNonNeg(r1 - r0, step) - 1;
  for (int64_t t : {int64_t(0), last})
    if (Int(cntA) * t + cntB < 0)
      return emitError() << "piece count (" << cntA << "*t + " << cntB
                         << ") is negative at row t = " << t;
  return success();
}

/// The local rows [t0, t1] of a piece whose count a*t + b is positive
/// (an interval: the count is affine); none if no row holds a key.
static std::optional<std::pair<Int, Int>> positiveRows(Int a, Int b, Int numRows) {
  Int t0 = 0, t1 = numRows - 1;
  restrictNonPositive(Affine{-a, 1 - b}, t0, t1); // 1 - count(t) <= 0
  if (t0 > t1)
    return std::nullopt;
  return std::make_pair(t0, t1);
}

/// Checks that every key of `piece` lies in [0, lk) and returns its live rows
/// normalised (none when no row holds a key). The first and last key of a row
/// are affine in t, so it suffices to check the ends of the range of rows whose
/// count is at least one.
static LogicalResult verifyPieceColumns(EmitErrorFn emitError, PieceAttr piece,
                                        int64_t index, int64_t lk,
                                        std::optional<LivePiece> &live) {
  Int offA = piece.getOffA(), offB = piece.getOffB();
  Int cntA = piece.getCntA(), cntB = piece.getCntB();
  Int stride = piece.getStride();
  auto rows = positiveRows(cntA, cntB, piece.getNumRows());
  if (!rows)
    return success();
  auto [t0, t1] = *rows;
  Int lastKeys[2];
  for (int end = 0; end < 2; ++end) {
    Int t = end ? t1 : t0;
    Int first = offA * t + offB, count = cntA * t + cntB, span, last;
    bool overflow = __builtin_mul_overflow(stride, count - 1, &span) ||
                    __builtin_add_overflow(first, span, &last);
    if (first < 0 || overflow || last >= lk)
      return emitError() << "piece #" << index << " row t = " << toString(t)
                         << " has keys " << toString(first) << " .. "
                         << (overflow ? std::string("(past 2^127)")
                                      : toString(last))
                         << " outside [0, " << lk << ")";
    lastKeys[end] = last;
  }
  LivePiece p;
  p.index = index;
  p.numRows = t1 - t0 + 1;
  bool oneRow = p.numRows == 1;
  p.row0 = piece.getR0() + Int(piece.getStep()) * t0;
  p.rowStep = oneRow ? 1 : piece.getStep();
  p.offset = {oneRow ? 0 : offA, offA * t0 + offB};
  p.count = {oneRow ? 0 : cntA, cntA * t0 + cntB};
  bool oneKey = p.count.b == 1 && p.count.at(p.numRows - 1) == 1;
  p.stride = oneKey ? 1 : stride;
  p.colLo = std::min(p.offset.b, p.offset.at(p.numRows - 1));
  p.colHi = std::max(lastKeys[0], lastKeys[1]);
  live = p;
  return success();
}

/// Pairwise disjointness of the pieces: a sweep over the pieces by first row
/// keeps the pieces whose rows are still live; a pair whose bounding boxes meet
/// is decided exactly by firstOverlap. O(P log P + P*A) box tests, A the most
/// pieces live at once, plus the exact checks (O(1) each for stride-1 and
/// equal-stride pairs); no cost per row or per key.
static LogicalResult verifyDisjoint(EmitErrorFn emitError,
                                    ArrayRef<LivePiece> live) {
  std::vector<const LivePiece *> active;
  for (const LivePiece &p : live) {
    llvm::erase_if(active, [&](const LivePiece *a) { return a->lastRow() < p.row0; });
    for (const LivePiece *a : active) {
      if (a->colHi < p.colLo || p.colHi < a->colLo)
        continue;
      if (auto hit = firstOverlap(*a, p)) {
        int64_t first = std::min(a->index, p.index), second = std::max(a->index, p.index);
        return emitError() << "acsr pieces #" << first << " and #" << second
                           << " overlap at (row, col) = (" << toString(hit->first)
                           << ", " << toString(hit->second)
                           << "): pieces must be disjoint";
      }
    }
    active.push_back(&p);
  }
  return success();
}

/// The remainder: blocks inside the mask, sorted and unique, clipped at the
/// edges (no allowed element outside lq x lk) and disjoint from the pieces.
/// Linear in the blocks and the mask elements they hold, plus, per remainder
/// row, the pieces live on it.
static LogicalResult verifyRemainder(EmitErrorFn emitError, int64_t lq,
                                     int64_t lk, BlockRemainderAttr remainder,
                                     ArrayRef<LivePiece> live) {
  int64_t block = remainder.getBlock();
  ArrayRef<int64_t> blocks = remainder.getBlocks();
  size_t numBlocks = blocks.size() / 2;
  int64_t rowBlocks = ceilDivNonNeg(lq, block), colBlocks = ceilDivNonNeg(lk, block);
  for (size_t n = 0; n < numBlocks; ++n) {
    int64_t rb = blocks[2 * n], cb = blocks[2 * n + 1];
    if (rb >= rowBlocks || cb >= colBlocks)
      return emitError() << "remainder block (" << rb << ", " << cb
                         << ") lies outside the " << lq << "x" << lk << " mask";
    if (n > 0 && std::make_pair(blocks[2 * n - 2], blocks[2 * n - 1]) >=
                     std::make_pair(rb, cb))
      return emitError() << "remainder blocks must be sorted and unique: block #"
                         << n << " (" << rb << ", " << cb << ") follows ("
                         << blocks[2 * n - 2] << ", " << blocks[2 * n - 1] << ")";
  }
  // Mask element (r, c) of block n; absent masks allow every element.
  DenseElementsAttr masks = remainder.getMasks();
  bool uniform = !masks || masks.isSplat();
  bool uniformValue = !masks || (masks.isSplat() && masks.getSplatValue<bool>());
  using BoolIterator = decltype(masks.getValues<bool>().begin());
  std::optional<BoolIterator> values;
  if (!uniform)
    values = masks.getValues<bool>().begin();
  auto allowed = [&](size_t n, Int r, Int c) -> bool {
    if (uniform)
      return uniformValue;
    return *(*values + ptrdiff_t((Int(n) * block + r) * block + c));
  };
  Int B = block;
  for (size_t n = 0; n < numBlocks; ++n) {
    Int r0 = Int(blocks[2 * n]) * B, c0 = Int(blocks[2 * n + 1]) * B;
    Int rowsIn = std::min<Int>(B, lq - r0), colsIn = std::min<Int>(B, lk - c0);
    if (rowsIn == B && colsIn == B)
      continue;
    if (uniform && !uniformValue)
      continue;
    for (Int r = 0; r < B; ++r)
      for (Int c = r < rowsIn ? colsIn : 0; c < B; ++c)
        if (allowed(n, r, c))
          return emitError()
                 << "remainder block (" << blocks[2 * n] << ", "
                 << blocks[2 * n + 1] << ") allows (row, col) = ("
                 << toString(r0 + r) << ", " << toString(c0 + c)
                 << ") outside the " << lq << "x" << lk
                 << " mask: edge blocks must be clipped";
  }
  // Disjoint from the pieces: per row block of the remainder, the pieces live
  // there; per row of such a piece, the blocks its columns reach (binary
  // search), and in each the piece's keys inside it against the mask.
  if (uniform && !uniformValue)
    return success();
  size_t next = 0;
  std::vector<const LivePiece *> active;
  for (size_t g = 0; g < numBlocks;) {
    size_t gEnd = g;
    while (gEnd < numBlocks && blocks[2 * gEnd] == blocks[2 * g])
      ++gEnd;
    Int rowLo = Int(blocks[2 * g]) * B, rowHi = std::min<Int>(rowLo + B, lq) - 1;
    while (next < live.size() && live[next].row0 <= rowHi)
      active.push_back(&live[next++]);
    llvm::erase_if(active, [&](const LivePiece *a) { return a->lastRow() < rowLo; });
    for (const LivePiece *p : active) {
      Int uLo = std::max<Int>(0, ceilDiv(rowLo - p->row0, p->rowStep));
      Int uHi = std::min<Int>(p->numRows - 1, floorDiv(rowHi - p->row0, p->rowStep));
      Affine lastKey = p->lastKey();
      for (Int u = uLo; u <= uHi; ++u) {
        Int row = p->row0 + p->rowStep * u;
        Int first = p->offset.at(u), last = lastKey.at(u);
        // Blocks of this row block with col_block in [first / B, last / B].
        size_t lo = g, hi = gEnd;
        while (lo < hi) {
          size_t mid = (lo + hi) / 2;
          if (Int(blocks[2 * mid + 1]) < first / B)
            lo = mid + 1;
          else
            hi = mid;
        }
        for (size_t m = lo; m < gEnd && Int(blocks[2 * m + 1]) <= last / B; ++m) {
          Int c0 = Int(blocks[2 * m + 1]) * B;
          Int from = std::max(first, c0), to = std::min(last, c0 + B - 1);
          for (Int key = first + p->stride * ceilDiv(from - first, p->stride);
               key <= to; key += p->stride) {
            if (allowed(m, row - rowLo, key - c0))
              return emitError()
                     << "remainder block (" << blocks[2 * m] << ", "
                     << blocks[2 * m + 1] << ") overlaps piece #" << p->index
                     << " at (row, col) = (" << toString(row) << ", "
                     << toString(key) << ")";
          }
        }
      }
    }
    g = gEnd;
  }
  return success();
}

LogicalResult ACSRAttr::verify(EmitErrorFn emitError, int64_t lq, int64_t lk,
                               ArrayAttr pieces,
                               BlockRemainderAttr remainder) {
  if (failed(requireAtLeast(emitError, "acsr", "lq", lq, 1)) ||
      failed(requireAtLeast(emitError, "acsr", "lk", lk, 1)))
    return failure();
  std::vector<LivePiece> live;
  live.reserve(pieces.size());
  for (auto [index, attr] : llvm::enumerate(pieces)) {
    auto piece = dyn_cast<PieceAttr>(attr);
    if (!piece)
      return emitError() << "acsr pieces must be #splat.piece, got " << attr;
    if (piece.getR1() > lq)
      return emitError() << "piece #" << index << " rows end at "
                         << piece.getR1() << ", past lq = " << lq;
    std::optional<LivePiece> rows;
    if (failed(verifyPieceColumns(emitError, piece, index, lk, rows)))
      return failure();
    if (rows)
      live.push_back(*rows);
  }
  std::stable_sort(live.begin(), live.end(),
                   [](const LivePiece &a, const LivePiece &b) { return a.row0 < b.row0; });
  if (failed(verifyDisjoint(emitError, live)))
    return failure();
  if (!remainder)
    return success();
  return verifyRemainder(emitError, lq, lk, remainder, live);
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
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  if (failed(requireAtLeast(emitError, "tile_schedule", "block_m", blockM, 1)) ||
      failed(requireAtLeast(emitError, "tile_schedule", "block_n", blockN, 1)))
    return failure();
  if (rowTiles.size() % 5 != 0 || segments.size() % 9 != 0)
    return emitError() << "tile_schedule row_tiles must hold 5 and segments 9 "
                          "values per entry";
  ArrayRef<int32_t> tiles = rowTiles.asArrayRef();
  ArrayRef<int32_t> segs = segments.asArrayRef();
  int64_t numTiles = tiles.size() / 5, numSegments = segs.size() / 9;
  for (int64_t i = 0; i < numTiles; ++i) {
    int64_t row0 = tiles[5 * i], step = tiles[5 * i + 1], nrows = tiles[5 * i + 2];
    int64_t begin = tiles[5 * i + 3], end = tiles[5 * i + 4];
    if (row0 < 0)
      return emitError() << "tile_schedule row tile #" << i << " has row0 = "
                         << row0 << " (must be >= 0)";
    if (step < 1 || nrows < 1 || nrows > blockM)
      return emitError() << "tile_schedule row tile #" << i
                         << " has row_step " << step << " and " << nrows
                         << " rows (block_m = " << blockM << ")";
    if (row0 + step * (nrows - 1) > kInt32Max)
      return emitError() << "tile_schedule row tile #" << i << " reaches row "
                         << row0 + step * (nrows - 1)
                         << ", past the int32 range of the kernel's rows";
    if (begin < 0 || begin > end || end > numSegments)
      return emitError() << "tile_schedule row tile #" << i
                         << " names segments " << begin << " .. " << end
                         << " of " << numSegments;
  }
  for (int64_t s = 0; s < numSegments; ++s) {
    const int32_t *seg = &segs[9 * s];
    if (seg[1] < 1)
      return emitError() << "tile_schedule segment #" << s
                         << " has col_step " << seg[1] << " (must be >= 1)";
    if (seg[0] < 0 || seg[2] < 1)
      return emitError() << "tile_schedule segment #" << s << " has col0 = "
                         << seg[0] << " and ncols = " << seg[2]
                         << " (need col0 >= 0, ncols >= 1)";
    if (int64_t(seg[0]) + int64_t(seg[1]) * (seg[2] - 1) > kInt32Max)
      return emitError() << "tile_schedule segment #" << s << " reaches key "
                         << int64_t(seg[0]) + int64_t(seg[1]) * (seg[2] - 1)
                         << ", past the int32 range of the kernel's keys";
  }
  // Each segment belongs to at most one row tile (the tiler writes them as
  // consecutive ranges); then its rows and key bounds are checked against the
  // tile that owns it, in time linear in the tables.
  SmallVector<std::pair<int64_t, int64_t>> ranges; // (begin, tile)
  for (int64_t i = 0; i < numTiles; ++i)
    if (tiles[5 * i + 3] < tiles[5 * i + 4])
      ranges.push_back({tiles[5 * i + 3], i});
  llvm::sort(ranges);
  for (size_t k = 1; k < ranges.size(); ++k) {
    int64_t prev = ranges[k - 1].second, tile = ranges[k].second;
    if (tiles[5 * prev + 4] > ranges[k].first)
      return emitError() << "tile_schedule row tiles #" << std::min(prev, tile)
                         << " and #" << std::max(prev, tile)
                         << " share segment #" << ranges[k].first
                         << ": each segment belongs to one row tile";
  }
  for (int64_t i = 0; i < numTiles; ++i) {
    int64_t nrows = tiles[5 * i + 2];
    for (int64_t s = tiles[5 * i + 3]; s < tiles[5 * i + 4]; ++s) {
      const int32_t *seg = &segs[9 * s];
      int64_t ncols = seg[2], rhoLo = seg[3], rhoHi = seg[4];
      if (rhoLo < 0 || rhoLo >= rhoHi || rhoHi > nrows)
        return emitError() << "tile_schedule segment #" << s << " of row tile #"
                           << i << " has rows " << rhoLo << " .. " << rhoHi
                           << ", not inside the tile's " << nrows << " rows";
      // lo and hi are affine in rho: checking both end rows suffices.
      for (int64_t rho : {rhoLo, rhoHi - 1}) {
        int64_t lo = int64_t(seg[5]) * rho + seg[6];
        int64_t hi = int64_t(seg[7]) * rho + seg[8];
        if (lo < 0 || hi < lo || hi > ncols)
          return emitError() << "tile_schedule segment #" << s << " of row tile #"
                             << i << " has keys [" << lo << ", " << hi
                             << ") at rho = " << rho << ", not inside [0, "
                             << ncols << ")";
      }
    }
  }
  if (plans) {
    if (plans.size() != numTiles)
      return emitError() << "tile_schedule has " << plans.size()
                         << " plans for " << numTiles << " row tiles";
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
  if (maskPtr.size() != numTiles + 1 || maskTiles.size() % 2 ||
      maskBits.size() != numMaskTiles * blockM * words)
    return emitError() << "tile_schedule mask tables have inconsistent sizes: "
                       << maskPtr.size() << " pointers for " << numTiles
                       << " row tiles, " << numMaskTiles << " mask tiles, "
                       << maskBits.size() << " bit words (expected "
                       << numMaskTiles * blockM * words << ")";
  ArrayRef<int32_t> ptr = maskPtr.asArrayRef(), mtiles = maskTiles.asArrayRef();
  ArrayRef<int32_t> bits = maskBits.asArrayRef();
  for (int64_t i = 0; i <= numTiles; ++i)
    if ((i == 0 && ptr[0] != 0) || (i > 0 && ptr[i] < ptr[i - 1]) ||
        (i == numTiles && ptr[i] != numMaskTiles))
      return emitError() << "tile_schedule mask_ptr must rise from 0 to the "
                         << numMaskTiles << " mask tiles; mask_ptr[" << i
                         << "] = " << ptr[i];
  for (int64_t m = 0; m < numMaskTiles; ++m)
    if (mtiles[2 * m] < 0 || mtiles[2 * m + 1] < 1 || mtiles[2 * m + 1] > blockN)
      return emitError() << "tile_schedule mask tile #" << m << " has col0 = "
                         << mtiles[2 * m] << " and ncols = " << mtiles[2 * m + 1]
                         << " (need col0 >= 0, 1 <= ncols <= block_n = "
                         << blockN << ")";
  // No bit outside a mask tile's rows (those of its row tile) and keys.
  for (int64_t i = 0; i < numTiles; ++i) {
    int64_t nrows = tiles[5 * i + 2];
    for (int64_t m = ptr[i]; m < ptr[i + 1]; ++m) {
      int64_t ncols = mtiles[2 * m + 1];
      for (int64_t rho = 0; rho < blockM; ++rho)
        for (int64_t w = 0; w < words; ++w) {
          uint32_t word = uint32_t(bits[(m * blockM + rho) * words + w]);
          int64_t keep = rho >= nrows ? 0 : std::clamp<int64_t>(ncols - 32 * w, 0, 32);
          uint32_t outside = keep >= 32 ? 0u : ~((uint32_t(1) << keep) - 1);
          if (word & outside)
            return emitError()
                   << "tile_schedule mask tile #" << m << " of row tile #" << i
                   << " sets bits outside its " << nrows << " rows and "
                   << ncols << " keys (at rho = " << rho << ")";
        }
    }
  }
  return success();
}

/// Checks a schedule against its layout's lq x lk: every key of a segment or
/// mask tile lies in [0, lk), every row of a row tile in [0, lq), and no row is
/// in two row tiles; the main schedule's row tiles partition [0, lq) (each row
/// is written exactly once), a split schedule's cover some of the rows. The
/// attribute verifier has checked the tables themselves (each segment's keys
/// are col0 + col_step*u with 0 <= u < ncols). Linear in the tables and rows.
static LogicalResult verifyScheduleBounds(Operation *op, StringRef name,
                                          TileScheduleAttr schedule, int64_t lq,
                                          int64_t lk, bool partition) {
  ArrayRef<int32_t> tiles = schedule.getRowTiles().asArrayRef();
  ArrayRef<int32_t> segs = schedule.getSegments().asArrayRef();
  for (size_t s = 0; s < segs.size() / 9; ++s) {
    int64_t last = int64_t(segs[9 * s]) + int64_t(segs[9 * s + 1]) * (segs[9 * s + 2] - 1);
    if (last >= lk)
      return op->emitOpError() << name << " segment #" << s << " reaches key "
                               << last << ", past lk = " << lk;
  }
  if (DenseI32ArrayAttr maskTiles = schedule.getMaskTiles()) {
    ArrayRef<int32_t> mtiles = maskTiles.asArrayRef();
    for (size_t m = 0; m < mtiles.size() / 2; ++m)
      if (int64_t(mtiles[2 * m]) + mtiles[2 * m + 1] > lk)
        return op->emitOpError()
               << name << " mask tile #" << m << " covers keys " << mtiles[2 * m]
               << " .. " << int64_t(mtiles[2 * m]) + mtiles[2 * m + 1] - 1
               << ", past lk = " << lk;
  }
  size_t numTiles = tiles.size() / 5;
  int64_t rows = 0, maxRow = -1;
  for (size_t i = 0; i < numTiles; ++i) {
    int64_t last = tiles[5 * i] + int64_t(tiles[5 * i + 1]) * (tiles[5 * i + 2] - 1);
    if (last >= lq)
      return op->emitOpError() << name << " row tile #" << i << " reaches row "
                               << last << ", past lq = " << lq;
    rows += tiles[5 * i + 2];
    maxRow = std::max(maxRow, last);
  }
  // Rows are < lq and <= INT32_MAX here, so the bit set has at most 2^31 bits.
  llvm::BitVector seen(size_t(maxRow + 1));
  for (size_t i = 0; i < numTiles; ++i) {
    int64_t row0 = tiles[5 * i], step = tiles[5 * i + 1], nrows = tiles[5 * i + 2];
    for (int64_t r = row0; r < row0 + step * nrows; r += step) {
      if (!seen.test(r)) {
        seen.set(r);
        continue;
      }
      size_t other = 0;
      while (other < i && !(r >= tiles[5 * other] &&
                            (r - tiles[5 * other]) % tiles[5 * other + 1] == 0 &&
                            (r - tiles[5 * other]) / tiles[5 * other + 1] <
                                tiles[5 * other + 2]))
        ++other;
      return op->emitOpError() << name << " row tiles #" << other << " and #"
                               << i << " both hold row " << r
                               << ": a row must be written once";
    }
  }
  if (partition && rows != lq) {
    int gap = seen.find_first_unset();
    return op->emitOpError() << name << " leaves row "
                             << (gap < 0 ? int64_t(seen.size()) : int64_t(gap))
                             << " in no row tile: its row tiles must cover [0, "
                             << lq << ")";
  }
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
  if (failed(verifyScale(*this, getScale())) ||
      failed(verifyLayoutDims(*this, getLayout(), q.getDimSize(2),
                              k.getDimSize(2))))
    return failure();
  auto acsr = dyn_cast<ACSRAttr>(getLayout());
  if (acsr && getSchedule() &&
      failed(verifyScheduleBounds(*this, "schedule", getScheduleAttr(),
                                  acsr.getLq(), acsr.getLk(), true)))
    return failure();
  if (acsr && getSplitSchedule() &&
      failed(verifyScheduleBounds(*this, "split_schedule", getSplitScheduleAttr(),
                                  acsr.getLq(), acsr.getLk(), false)))
    return failure();
  return success();
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
