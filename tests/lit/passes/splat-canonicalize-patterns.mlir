// RUN: %splat-opt %s --split-input-file --pass-pipeline='builtin.module(splat-canonicalize-patterns)' | FileCheck %s

// Nested unions flatten, duplicates go.
// CHECK-LABEL: func.func @nested
// CHECK: layout(#splat.union<[#splat.window<w = 4>, #splat.causal, #splat.global_tokens<[0]>]>)
func.func @nested(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.union<[#splat.union<[#splat.window<w = 4>, #splat.causal]>, #splat.union<[#splat.causal, #splat.global_tokens<[0]>]>]>)
      : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %o : tensor<1x1x8x16xf16>
}

// -----

// A one-member union is its member; intersections flatten too, inside unions.
// CHECK-LABEL: func.func @single
// CHECK: layout(#splat.window<w = 4>)
// CHECK: layout(#splat.union<[#splat.intersect<[#splat.window<w = 4>, #splat.causal, #splat.blocked<block = 2>]>, #splat.causal]>)
func.func @single(%q: tensor<1x1x8x16xf16>) -> (tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>) {
  %o = splat.attention %q, %q, %q layout(#splat.union<[#splat.window<w = 4>]>)
      : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  %p = splat.attention %q, %q, %q layout(#splat.union<[#splat.intersect<[#splat.intersect<[#splat.window<w = 4>, #splat.causal]>, #splat.blocked<block = 2>]>, #splat.causal]>)
      : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %o, %p : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>
}

// -----

// Other layouts are left alone.
// CHECK-LABEL: func.func @untouched
// CHECK: layout(#splat.dilated<w = 2, stride = 2>)
func.func @untouched(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.dilated<w = 2, stride = 2>)
      : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %o : tensor<1x1x8x16xf16>
}
