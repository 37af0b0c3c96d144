// The strings of the accounts, API tokens and audit log pages, in both
// languages; i18n.js merges them into its dictionary.
export const ADMIN = {
  zh: {
    navAccounts: '账号',
    navAudit: '操作记录',
  },
  en: {
    navAccounts: 'Accounts',
    navAudit: 'Audit log',
  },
};
