//! Uptime-Kuma-style service checks with heartbeat history and uptime figures.
