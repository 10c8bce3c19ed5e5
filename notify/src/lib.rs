//! Mattermost notifications through incoming webhooks, with retries and rate limits.
