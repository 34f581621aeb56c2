//! The grant (PROTOCOL.md §4): `facts` turns a parsed header into what the
//! decision reads (the cryptographic half: which server keys the header
//! names and whether their wraps open), and `decision` decides, as one pure
//! function of those facts, the stored state and the time. The handler
//! (`api::client`) and the store (`store::txn`) call them; neither decides
//! anything itself.

pub mod decision;
pub mod facts;
