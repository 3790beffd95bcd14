import config from '@proxy/eslint-config';

export default config;
