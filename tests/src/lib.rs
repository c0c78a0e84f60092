//! Integration tests, and what the durability tests share with their writer process: the
//! numbered write workload and how to tell which of its writes a database holds.

pub mod workload;
