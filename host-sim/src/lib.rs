//! tinytrain-sim: the desktop side of tinytrain.
