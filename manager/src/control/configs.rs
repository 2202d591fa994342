//! The control API behind `/configs`: like secrets, but the data is stored
//! as it is and returned by inspect (SwarmKit's behaviour).

use shoal_api::filters::Filters;
use shoal_api::secret::{Config, ConfigSpec, MAX_CONFIG_SIZE};
use shoal_api::ApiError;

use super::secrets::{invalid, matches, validate_name};
use super::ControlApi;
use crate::store::Command;

pub const CONFIG_FILTERS: &[&str] = &["id", "label", "name"];

pub fn validate_config_spec(spec: &ConfigSpec) -> Result<(), ApiError> {
    validate_name(&spec.name)?;
    super::secrets::check_templating(spec.templating.as_ref())?;
    let len = spec.data.as_ref().map(Vec::len).unwrap_or(0);
    if len == 0 || len >= MAX_CONFIG_SIZE {
        return Err(invalid(format!("config data must be larger than 0 and less than {MAX_CONFIG_SIZE} bytes")));
    }
    Ok(())
}

impl ControlApi {
    pub async fn create_config(&self, spec: ConfigSpec) -> Result<String, ApiError> {
        validate_config_spec(&spec)?;
        let id = shoal_api::id::new_id();
        let now = shoal_api::time::now_rfc3339();
        let config = Config { id: id.clone(), created_at: now.clone(), updated_at: now, spec, ..Default::default() };
        self.cluster.propose(Command::CreateConfig { config: Box::new(config) }).await?;
        Ok(id)
    }

    pub fn configs(&self, filters: &Filters) -> Vec<Config> {
        let st = self.cluster.store();
        st.configs.values().filter(|c| matches(filters, &c.id, &c.spec.name, &c.spec.labels)).cloned().collect()
    }

    pub fn config(&self, key: &str) -> Result<Config, ApiError> {
        self.cluster.store().find_config(key).cloned()
    }

    pub async fn update_config(&self, key: &str, version: u64, spec: ConfigSpec) -> Result<(), ApiError> {
        let (id, name, data) = {
            let st = self.cluster.store();
            let c = st.find_config(key)?;
            (c.id.clone(), c.spec.name.clone(), c.spec.data.clone())
        };
        if spec.name != name || spec.data.as_ref().is_some_and(|d| Some(d) != data.as_ref()) {
            return Err(invalid("only updates to Labels are allowed"));
        }
        self.cluster.propose(Command::UpdateConfig { id, version, labels: spec.labels }).await.map(|_| ()).map_err(ApiError::from)
    }

    pub async fn remove_config(&self, key: &str) -> Result<(), ApiError> {
        let id = self.cluster.store().find_config(key)?.id.clone();
        self.cluster.propose(Command::RemoveConfig { id }).await.map(|_| ()).map_err(ApiError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_sizes_follow_swarmkit() {
        let spec = |n: usize| ConfigSpec { name: "site".into(), data: Some(vec![b'x'; n]), ..Default::default() };
        assert!(validate_config_spec(&spec(MAX_CONFIG_SIZE - 1)).is_ok());
        let e = validate_config_spec(&spec(0)).unwrap_err();
        assert_eq!(e.message, "rpc error: code = InvalidArgument desc = config data must be larger than 0 and less than 1024000 bytes");
        assert!(validate_config_spec(&ConfigSpec { name: "bad name".into(), ..spec(1) }).is_err());
    }
}
