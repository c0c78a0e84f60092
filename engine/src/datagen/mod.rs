//! Seeded generator of realistic member data (arrives next).
