//! The pages a merchant sees.

pub mod landing;
pub mod layout;
pub mod not_found;
