"""Model building blocks shared by tasks: Keras layers (``layers``) and sequence decoding,
greedy and beam search as graph code (``decoding``)."""
