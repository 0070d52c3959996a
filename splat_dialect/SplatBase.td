//===- SplatBase.td - the splat dialect ---------------------*- tablegen -*-===//
//
// The dialect of SPLAT: sparse regular attention and its ACSR layout.
//
//===----------------------------------------------------------------------===//

#ifndef SPLAT_BASE_TD
#define SPLAT_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Splat_Dialect : Dialect {
  let name = "splat";
  let cppNamespace = "::mlir::splat";
  let summary = "Sparse regular attention and the ACSR layout";
  let description = [{
    The `splat` dialect describes multi-head attention whose mask is sparse
    and geometrically regular. A mask is first written as a *pattern*
    attribute (`#splat.window<...>`, `#splat.dilated<...>`, unions, ...);
    the regularity analysis rewrites it into an *ACSR* layout
    (`#splat.acsr<...>`): a disjoint union of affine pieces, each row's keys
    being `offset(t) + stride * j` for `j < count(t)`, plus an optional
    irregular block remainder. Tiling and lowering consume the ACSR form.
  }];
  let useDefaultAttributePrinterParser = 1;
}

#endif // SPLAT_BASE_TD
