"""The auth module: Login, token refresh and logout; publishes auth.login and auth.logout."""
