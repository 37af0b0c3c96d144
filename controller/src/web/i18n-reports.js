// The strings of the reports page and the dashboard's operator alarms, in
// both languages; i18n.js merges them into its dictionary.
export const REPORTS = {
  zh: {
    navReports: '统计报表',
    alarmsTitle: '运维告警',
  },
  en: {
    navReports: 'Reports',
    alarmsTitle: 'Operator alarms',
  },
};
