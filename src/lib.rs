//! Tokenward: per-site authentication headers compiled to declarativeNetRequest.
