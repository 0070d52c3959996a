// RUN: %splat-opt %s --split-input-file --pass-pipeline='builtin.module(splat-analyze-regularity, splat-test-print-acsr)' | FileCheck %s

// A window is a top ramp, a body and a bottom ramp.
// CHECK-LABEL: splat.attention: 64x64 nnz={{[0-9]+}} density={{.*}} pieces=3
// CHECK-NEXT: acsr Lq=64 Lk=64 pieces=3 remainder=0
// CHECK: piece rows=0:5:1 stride=1 offset=0*t+0 count=1*t+5
// CHECK: piece rows=5:60:1 stride=1 offset=1*t+1 count=0*t+9
// CHECK: piece rows=60:64:1 stride=1 offset=1*t+56 count=-1*t+8
func.func @window(%q: tensor<1x2x64x64xbf16>) -> tensor<1x2x64x64xbf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 4>) : tensor<1x2x64x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x2x64x64xbf16> -> tensor<1x2x64x64xbf16>
  return %o : tensor<1x2x64x64xbf16>
}

// -----

// Dilated: a stride-2 body plus one ramp piece per residue class (row step 2) at each end.
// CHECK-LABEL: splat.attention: 64x64 {{.*}} pieces=5
// CHECK-DAG: piece rows=8:56:1 stride=2 offset=1*t+0 count=0*t+9
// CHECK-DAG: piece rows=0:7:2 stride=2 offset=0*t+0 count=1*t+5
// CHECK-DAG: piece rows=1:8:2 stride=2 offset=0*t+1 count=1*t+5
// CHECK-DAG: piece rows=56:63:2 stride=2 offset=2*t+48 count=-1*t+8
// CHECK-DAG: piece rows=57:64:2 stride=2 offset=2*t+49 count=-1*t+8
func.func @dilated(%q: tensor<1x2x64x64xbf16>) -> tensor<1x2x64x64xbf16> {
  %o = splat.attention %q, %q, %q layout(#splat.dilated<w = 4, stride = 2>) : tensor<1x2x64x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x2x64x64xbf16> -> tensor<1x2x64x64xbf16>
  return %o : tensor<1x2x64x64xbf16>
}

// -----

// Already-analysed layouts are left alone; Lq != Lk works.
// CHECK-LABEL: splat.attention: 8x16 nnz=8 density=0.0625 pieces=1
// CHECK: layout(#splat.acsr<lq = 64, lk = 64, pieces = [#splat.piece<rows 0 to 5 step 1, stride 1, offset(0, 0), count(1, 5)>
// CHECK: layout(#splat.acsr<lq = 64, lk = 64, pieces = [#splat.piece<rows 8 to 56 step 1, stride 2
// CHECK: layout(#splat.acsr<lq = 8, lk = 16, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset(2, 0), count(0, 1)>]>)
func.func @acsr(%q: tensor<1x1x8x64xf16>, %k: tensor<1x1x16x64xf16>) -> tensor<1x1x8x64xf16> {
  %o = splat.attention %q, %k, %k layout(#splat.acsr<lq = 8, lk = 16, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (2, 0), count (0, 1)>]>) : tensor<1x1x8x64xf16>, tensor<1x1x16x64xf16>, tensor<1x1x16x64xf16> -> tensor<1x1x8x64xf16>
  return %o : tensor<1x1x8x64xf16>
}

