//! One module per resource: its section types, how they are built from two snapshots and the
//! measured elapsed time, its thresholds (data, with their `why`) and rules, and its column
//! specs. A layer between the readers (`collect`) and the report (`model`): it imports neither
//! `model` nor anything above it, and `model::sections` gathers the resources' sections.

pub mod cgroup;
pub mod columns;
pub mod contract;
pub mod cpu;
pub mod disk;
pub mod filesystem;
pub mod kernel_log;
pub mod limits;
pub mod memory;
pub mod netif;
pub mod pressure;
pub mod qdisc;
pub mod rule;
pub mod scope;
pub mod sockets;
pub mod tasks;
pub mod tcp;
pub mod vmstat;
