// Bidi override ‮ and emoji 😀 in IR.
func.func @f‮() { return }

