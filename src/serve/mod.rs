//! (module under construction — placeholder written by the lead so the crate builds; the
//! serve engineer replaces this file entirely.)

pub struct ServeOptions {
    pub listen: String,
    pub api_key: Option<String>,
    pub script: Option<std::path::PathBuf>,
    pub log: Option<std::path::PathBuf>,
    pub faults: Vec<String>,
}

pub async fn run(_opts: ServeOptions) -> anyhow::Result<()> {
    anyhow::bail!("flux serve is not built yet")
}
