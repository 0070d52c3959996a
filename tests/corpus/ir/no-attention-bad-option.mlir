// splat-opt-args: --pass-pipeline=builtin.module(splat-tile-acsr{plan=bogus})
// No op to blame: the error goes to the first located op, never 0:0.
func.func @f() { return }
