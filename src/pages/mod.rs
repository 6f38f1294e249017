//! The pages a merchant sees.

pub mod app_frame;
pub mod credential;
pub mod dashboard;
pub mod landing;
pub mod layout;
pub mod not_found;
pub mod reports;
pub mod server_form;
pub mod settings;
pub mod your_sessions;
