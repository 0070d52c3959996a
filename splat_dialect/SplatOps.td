//===- SplatOps.td - attention ops ---------------------------*- tablegen -*-===//

#ifndef SPLAT_OPS_TD
#define SPLAT_OPS_TD

include "SplatAttrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/IR/CommonTypeConstraints.td"

// A layout is either an analysed ACSR or a not-yet-analysed pattern.
def Splat_LayoutAttr : Attr<
    CPred<"::llvm::isa<::mlir::splat::ACSRAttr, "
          "::mlir::splat::PatternAttrInterface>($_self)">,
    "ACSR layout or splat pattern attribute"> {
  let storageType = "::mlir::Attribute";
  let returnType = "::mlir::Attribute";
  let convertFromStorage = "$_self";
}

def Splat_FloatTensor4D : 4DTensorOf<[F16, BF16, F32]>;
def Splat_ScoreTensor : 4DTensorOf<[F16, BF16, F32]>;

class Splat_Op<string mnemonic, list<Trait> traits = []>
    : Op<Splat_Dialect, mnemonic, !listconcat(traits, [Pure])> {
  let hasVerifier = 1;
}

def Splat_AttentionOp : Splat_Op<"attention"> {
  let summary = "fused scaled-dot-product attention over a sparse layout";
  let description = [{
    `o[b, h, i] = sum_k softmax_k(scale * q[b, h, i] . k[b, g, k]) v[b, g, k]`
    over the keys `k` the layout allows for row `i`, with `g = h / (H / Hkv)`
    (grouped-query attention when `Hkv < H`). `q` is `B x H x Lq x D`, `k` and
    `v` are `B x Hkv x Lk x D`. Rows with no allowed key yield 0 when
    `zero_empty_rows` is set (the default), NaN otherwise. `scale` defaults to
    `1 / sqrt(D)`. After `splat-tile-acsr`, `schedule` holds the tiles. With
    `split_schedule` too (split-KV, for layouts that want two row groupings),
    `schedule` covers part of the layout and `split_schedule` the rest; the
    kernel runs on each and a merge combines the two partial results per row.

    ```mlir
    %o = splat.attention %q, %k, %v layout(#splat.window<w = 128>)
        : tensor<2x16x1024x64xbf16>, tensor<2x4x1024x64xbf16>,
          tensor<2x4x1024x64xbf16> -> tensor<2x16x1024x64xbf16>
    ```
  }];
  let arguments = (ins Splat_FloatTensor4D:$q, Splat_FloatTensor4D:$k,
                       Splat_FloatTensor4D:$v, Splat_LayoutAttr:$layout,
                       OptionalAttr<F32Attr>:$scale,
                       DefaultValuedAttr<BoolAttr, "true">:$zero_empty_rows,
                       OptionalAttr<Splat_TileScheduleAttr>:$schedule,
                       OptionalAttr<Splat_TileScheduleAttr>:$split_schedule);
  let results = (outs Splat_FloatTensor4D:$o);
  let assemblyFormat = [{
    $q `,` $k `,` $v `layout` `(` $layout `)` (`scale` `(` $scale^ `)`)?
    (`schedule` `(` $schedule^ `)`)? (`split_schedule` `(` $split_schedule^ `)`)? attr-dict
    `:` type($q) `,` type($k) `,` type($v) `->` type($o)
  }];
}

def Splat_SddmmOp : Splat_Op<"sddmm"> {
  let summary = "sampled dense-dense matmul into compressed scores";
  let description = [{
    `s[b, h, i, n] = scale * q[b, h, i] . k[b, g, col(i, n)]` where `col(i, n)`
    is the `n`-th allowed key of row `i` in layout order; entries past the
    row's key count are unspecified. The result is `B x H x Lq x maxnnz`.
  }];
  let arguments = (ins Splat_FloatTensor4D:$q, Splat_FloatTensor4D:$k,
                       Splat_LayoutAttr:$layout, OptionalAttr<F32Attr>:$scale);
  let results = (outs Splat_ScoreTensor:$scores);
  let assemblyFormat = [{
    $q `,` $k `layout` `(` $layout `)` (`scale` `(` $scale^ `)`)? attr-dict
    `:` type($q) `,` type($k) `->` type($scores)
  }];
}

def Splat_SoftmaxOp : Splat_Op<"softmax"> {
  let summary = "row softmax over compressed scores";
  let description = [{
    Softmax of each row over its first `count(i)` compressed entries; the
    entries past the count, and every entry of an empty row, become 0.
  }];
  let arguments = (ins Splat_ScoreTensor:$scores, Splat_LayoutAttr:$layout);
  let results = (outs Splat_ScoreTensor:$probs);
  let assemblyFormat = [{
    $scores `layout` `(` $layout `)` attr-dict `:` type($scores) `->` type($probs)
  }];
}

def Splat_SpmmOp : Splat_Op<"spmm"> {
  let summary = "compressed probabilities times values";
  let description = [{
    `o[b, h, i] = sum_n p[b, h, i, n] v[b, g, col(i, n)]` over the row's
    allowed keys.
  }];
  let arguments = (ins Splat_ScoreTensor:$probs, Splat_FloatTensor4D:$v,
                       Splat_LayoutAttr:$layout);
  let results = (outs Splat_FloatTensor4D:$o);
  let assemblyFormat = [{
    $probs `,` $v `layout` `(` $layout `)` attr-dict
    `:` type($probs) `,` type($v) `->` type($o)
  }];
}

#endif // SPLAT_OPS_TD
