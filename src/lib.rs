//! tidegate: placeholder, replaced below.
