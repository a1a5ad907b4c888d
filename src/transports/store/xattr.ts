/** Extended attributes for the store's appliers: the shared helper lives in io/ (unpack uses it too). */
export { setXattrs, xattrTool, type XattrWrite } from '../../io/xattr.js';
